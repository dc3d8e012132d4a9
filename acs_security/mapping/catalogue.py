"""The catalogue: every phone setting, model and rule, read from ``datamodel/``.

One object answers "what is this setting" for every other part of the ACS: by cfg.xml
element (``SIP_Transport_1_`` resolves the per-extension template with n = 1), by TR-069
path (base or overridden for a model and firmware) or by web name; and "which TR-069
parameters does a CP-8841-3PCC on firmware X have".
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acs_security.mapping.convert import ConversionError, to_tr069_text
from acs_security.mapping.errors import CatalogueError, UnknownModelError, UnknownSettingError, ValidationError
from acs_security.mapping.overrides import EffectiveOverride, Override, load_overrides, merge_overrides
from acs_security.mapping.paths import DATAMODEL_ENV, datamodel_dir, format_firmware, parse_firmware
from acs_security.mapping.records import (
    CONCRETE_EXT_ELEMENT,
    FORMATS,
    PATH_INSTANCE,
    PER_EXT_ELEMENT_SUFFIX,
    PROVENANCES,
    XSI_TYPES,
    Condition,
    ModelInfo,
    ParamSpec,
    Rule,
    Setting,
)

__all__ = [
    "Catalogue",
    "ModelView",
    "CipherFacts",
    "ApplicationDefaults",
    "load_catalogue",
]

_SETTING_KEYS = {
    "name", "element", "location", "path", "path_provenance", "format", "values", "tr069_type",
    "max_length", "min", "max", "default", "ua", "secret", "writable", "seeds", "source",
    "feature", "min_firmware", "until_firmware", "note",
}
_REQUIRED = ("name", "location", "path", "path_provenance", "format", "tr069_type", "default")
_UA = {"na", "ro", "rw"}


@dataclass(frozen=True, slots=True)
class ApplicationDefaults:
    """What one phone application uses when TLS Cipher List is blank or invalid (seed 000)."""

    application: str
    description: str
    cipher_string: str | None
    suites: tuple[str, ...]
    seed_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CipherFacts:
    """ciphers.toml: the phone's supported keywords (seed 000 Table 6) and defaults."""

    keywords: tuple[str, ...]
    extra_suites: frozenset[str]
    max_length: int
    phone_openssl: str
    defaults: tuple[ApplicationDefaults, ...]


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogueError(
            f"{path} is missing: point {DATAMODEL_ENV} at the datamodel/ directory of the acs-security source tree"
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CatalogueError(f"{path}: {exc}") from None


def _firmware(value: Any, releases: Mapping[str, str], where: str) -> tuple[int, int, int] | None:
    if value is None:
        return None
    text = releases.get(str(value), str(value))
    version = parse_firmware(text)
    if version is None:
        raise CatalogueError(f"{where}: firmware {value!r} is neither a release label of models.toml nor a version")
    return version


def _build_setting(row: Mapping[str, Any], releases: Mapping[str, str], index: int) -> Setting:
    where = f"settings.toml setting #{index + 1} ({row.get('element') or row.get('name')})"
    unknown = set(row) - _SETTING_KEYS
    if unknown:
        raise CatalogueError(f"{where}: unknown fields {sorted(unknown)}")
    missing = [k for k in _REQUIRED if k not in row]
    if missing:
        raise CatalogueError(f"{where}: missing fields {missing}")
    setting = Setting(
        name=str(row["name"]),
        element=row.get("element"),
        location=str(row["location"]),
        path=str(row["path"]),
        path_provenance=str(row["path_provenance"]),
        format=str(row["format"]),
        tr069_type=str(row["tr069_type"]),
        default=str(row["default"]),
        values=tuple(str(v) for v in row.get("values", ())),
        max_length=row.get("max_length"),
        minimum=row.get("min"),
        maximum=row.get("max"),
        ua=row.get("ua"),
        secret=bool(row.get("secret", False)),
        writable=bool(row.get("writable", True)),
        seeds=tuple(str(s) for s in row.get("seeds", ())),
        source=str(row.get("source", "")),
        feature=row.get("feature"),
        min_firmware=_firmware(row.get("min_firmware"), releases, where),
        until_firmware=_firmware(row.get("until_firmware"), releases, where),
        note=str(row.get("note", "")),
    )
    if setting.path_provenance not in PROVENANCES:
        raise CatalogueError(f"{where}: path_provenance {setting.path_provenance!r} not in {sorted(PROVENANCES)}")
    if setting.tr069_type not in XSI_TYPES:
        raise CatalogueError(f"{where}: tr069_type {setting.tr069_type!r} not in {sorted(XSI_TYPES)}")
    if setting.format not in FORMATS:
        raise CatalogueError(f"{where}: format {setting.format!r} not in {sorted(FORMATS)}")
    if setting.format in ("enum", "yesno") and not setting.values:
        raise CatalogueError(f"{where}: format {setting.format} needs values")
    if setting.ua is not None and setting.ua not in _UA:
        raise CatalogueError(f"{where}: ua {setting.ua!r} not in {sorted(_UA)}")
    if not setting.path.startswith("Device.") or setting.path.endswith("."):
        raise CatalogueError(f"{where}: path {setting.path!r} is no parameter path")
    if setting.element is not None and setting.element.endswith(PER_EXT_ELEMENT_SUFFIX) != setting.per_extension:
        raise CatalogueError(f"{where}: element ends in _n_ exactly when the path contains {PATH_INSTANCE}")
    if setting.element is None and setting.per_extension:
        raise CatalogueError(f"{where}: a per-extension setting needs its element template")
    return setting


def _build_condition(raw: Mapping[str, Any], where: str) -> Condition:
    tests = [k for k in raw if k not in ("setting", "any_extension")]
    if "setting" not in raw or len(tests) != 1:
        raise CatalogueError(f"{where}: a condition is {{ setting = KEY, <one test> }}, got {dict(raw)}")
    test = tests[0]
    operand = raw[test]
    if isinstance(operand, list):
        operand = tuple(str(v) for v in operand)
    try:
        return Condition(str(raw["setting"]), test, operand, bool(raw.get("any_extension", False)))
    except ValueError as exc:
        raise CatalogueError(f"{where}: {exc}") from None


def _build_rule(raw: Mapping[str, Any], known: Mapping[str, Setting]) -> Rule:
    where = f"rules.toml rule {raw.get('id')!r}"
    for key in ("id", "severity", "message", "seed", "when"):
        if key not in raw:
            raise CatalogueError(f"{where}: missing {key}")
    if raw["severity"] not in ("error", "warning"):
        raise CatalogueError(f"{where}: severity must be error or warning")
    when = tuple(_build_condition(c, where) for c in raw["when"])
    require = tuple(_build_condition(c, where) for c in raw.get("require", ()))
    trigger = tuple(str(t) for t in raw.get("trigger", ()))
    named: list[str] = []
    for cond in when + require:
        named.append(cond.setting)
        if cond.test == "contains_host_of":
            named.append(str(cond.operand))
    for key in named + list(trigger):
        if key not in known:
            raise CatalogueError(f"{where}: names unknown setting {key!r}")
    return Rule(
        id=str(raw["id"]),
        severity=str(raw["severity"]),
        message=str(raw["message"]),
        seed=str(raw["seed"]),
        when=when,
        require=require,
        trigger=trigger,
        settings=tuple(dict.fromkeys(named)),
    )


def _build_model(product_class: str, raw: Mapping[str, Any], settings: Sequence[Setting]) -> ModelInfo:
    features = frozenset(str(f) for f in raw.get("lacks", ()))
    known_features = {s.feature for s in settings if s.feature}
    if features - known_features:
        raise CatalogueError(f"models.toml {product_class}: lacks unknown features {sorted(features - known_features)}")
    count = raw.get("extensions")
    if not isinstance(count, int) or count < 1:
        raise CatalogueError(f"models.toml {product_class}: extensions must be a positive integer")
    batch = raw.get("spv_batch_size")
    if batch is not None and (not isinstance(batch, int) or batch < 1):
        raise CatalogueError(f"models.toml {product_class}: spv_batch_size must be a positive integer")
    return ModelInfo(
        product_class=product_class,
        family=str(raw.get("family", "")),
        extension_count=count,
        lacks=frozenset(s.key for s in settings if s.feature in features),
        lacks_features=features,
        aliases=tuple(str(a) for a in raw.get("aliases", ())),
        source=str(raw.get("source", "")),
        spv_batch_size=batch,
    )


def _build_ciphers(raw: Mapping[str, Any]) -> CipherFacts:
    defaults = []
    for app, table in raw.get("defaults", {}).items():
        suites: list[str] = []
        seed_names: list[str] = []
        for item in table.get("suites", ()):
            if isinstance(item, list):
                seed_names.append(str(item[0]))
                if item[1]:
                    suites.append(str(item[1]))
            else:
                suites.append(str(item))
        defaults.append(
            ApplicationDefaults(app, str(table.get("description", app)), table.get("cipher_string"), tuple(suites),
                                tuple(seed_names))
        )
    return CipherFacts(
        keywords=tuple(str(k) for k in raw["keywords"]),
        extra_suites=frozenset(str(s) for s in raw.get("extra_suites", ())),
        max_length=int(raw.get("max_length", 521)),
        phone_openssl=str(raw.get("phone_openssl", "")),
        defaults=tuple(defaults),
    )


def _template_regex(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(template).replace(re.escape(PATH_INSTANCE), "([1-9][0-9]{0,2})") + "$")


class Catalogue:
    """All settings, models and rules. Read-only after construction; use :func:`load_catalogue`."""

    def __init__(
        self,
        settings: Sequence[Setting],
        models: Mapping[str, ModelInfo],
        rules: Sequence[Rule],
        ciphers: CipherFacts,
        dhcp_options: Mapping[str, Mapping[int, str]],
        overrides: Sequence[Override] = (),
        directory: Path | None = None,
    ) -> None:
        self.settings: tuple[Setting, ...] = tuple(settings)
        self.models: Mapping[str, ModelInfo] = dict(models)
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.ciphers = ciphers
        self.dhcp_options: Mapping[str, Mapping[int, str]] = dict(dhcp_options)
        self.overrides: tuple[Override, ...] = tuple(overrides)
        self.directory = directory
        self._by_key: dict[str, Setting] = {}
        self._by_path: dict[str, Setting] = {}
        self._templates: list[tuple[re.Pattern[str], Setting]] = []
        names: dict[str, list[Setting]] = {}
        for s in self.settings:
            for index, mapping in ((s.key, self._by_key), (s.path, self._by_path)):
                if index in mapping:
                    raise CatalogueError(f"settings.toml: {index!r} appears twice")
                mapping[index] = s
            if s.per_extension:
                self._templates.append((_template_regex(s.path), s))
            names.setdefault(s.name.casefold(), []).append(s)
        self._by_name = names
        self._aliases: dict[str, str] = {}
        for pc, info in self.models.items():
            for alias in (pc, *info.aliases):
                self._aliases[alias.casefold()] = pc
        self._rules_by_id = {r.id: r for r in self.rules}
        self._views: dict[tuple[str | None, str | None], ModelView] = {}

    # ------------------------------------------------------------------ settings
    def find(self, key: str) -> tuple[Setting, int | None] | None:
        """(setting, extension) for an element, concrete element, path, concrete path or
        unique web name; None when nothing matches. Base paths only (no overrides)."""
        if key in self._by_key:
            s = self._by_key[key]
            return s, None
        if key in self._by_path:
            return self._by_path[key], None
        match = CONCRETE_EXT_ELEMENT.match(key)
        if match:
            template = self._by_key.get(match.group("base") + PER_EXT_ELEMENT_SUFFIX)
            if template is not None and template.per_extension:
                return template, int(match.group("n"))
        for regex, s in self._templates:
            m = regex.match(key)
            if m:
                return s, int(m.group(1))
        named = self._by_name.get(key.casefold())
        if named and len(named) == 1:
            return named[0], None
        return None

    def resolve(self, key: str) -> tuple[Setting, int | None]:
        """Like :meth:`find`. Raises UnknownSettingError with a close match when there is one."""
        found = self.find(key)
        if found is None:
            named = self._by_name.get(key.casefold())
            if named:
                raise UnknownSettingError(key, " or ".join(s.key for s in named))
            candidates = list(self._by_key) + [s.path for s in self.settings]
            close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.75)
            raise UnknownSettingError(key, close[0] if close else None)
        return found

    def setting(self, key: str) -> Setting:
        """The setting named by ``key`` (see :meth:`find`). Raises UnknownSettingError."""
        return self.resolve(key)[0]

    def rule(self, rule_id: str) -> Rule:
        """A cross-setting rule by id. Raises KeyError."""
        return self._rules_by_id[rule_id]

    # ------------------------------------------------------------------ models
    def model(self, product_class: str) -> ModelInfo:
        """A model by product class or alias, case-insensitively. Raises UnknownModelError."""
        pc = self._aliases.get(product_class.strip().casefold())
        if pc is None:
            raise UnknownModelError(product_class, list(self.models))
        return self.models[pc]

    @property
    def max_extensions(self) -> int:
        return max((m.extension_count for m in self.models.values()), default=1)

    def view(self, product_class: str | None, software_version: str | None = None) -> ModelView:
        """The settings and paths of one model and firmware (cached). Raises UnknownModelError."""
        canonical = self.model(product_class).product_class if product_class is not None else None
        key = (canonical, software_version)
        view = self._views.get(key)
        if view is None:
            view = ModelView(self, canonical, software_version)
            self._views[key] = view
        return view

    def parameters_for(self, product_class: str, software_version: str | None) -> list[ParamSpec]:
        """Every concrete TR-069 parameter a phone of that model and firmware has.

        Per-extension settings are expanded for n = 1..extension count; overrides applied.
        Raises UnknownModelError.
        """
        return list(self.view(product_class, software_version).parameters)

    def path_for(self, element: str, product_class: str | None = None, software_version: str | None = None) -> str:
        """The TR-069 path of a (concrete) element for a model and firmware.

        Raises UnknownSettingError; ValueError when a per-extension template has no n.
        """
        setting, n = self.resolve(element)
        return self.view(product_class, software_version).path_of(setting, n)

    def element_for(self, path: str, product_class: str | None = None, software_version: str | None = None) -> str:
        """The concrete cfg.xml element of a TR-069 path (as that model names it).

        Raises UnknownSettingError for an unknown path, ValidationError for a setting that
        has no cfg.xml element (web page or TR-069 only, e.g. FIPS Mode).
        """
        setting, n = self.view(product_class, software_version).resolve_path(path)
        element = setting.element_for(n)
        if element is None:
            raise ValidationError(setting, None, "has no cfg.xml element (web page or TR-069 only)")
        return element


class ModelView:
    """A catalogue seen from one (product class, firmware): what the phone has, its paths
    and types after overrides. Get one from :meth:`Catalogue.view`."""

    def __init__(self, catalogue: Catalogue, product_class: str | None, software_version: str | None) -> None:
        self.catalogue = catalogue
        self.model = catalogue.models[product_class] if product_class else None
        self.software_version = software_version
        self.firmware = parse_firmware(software_version) if software_version else None
        self.override: EffectiveOverride = merge_overrides(catalogue.overrides, product_class, software_version)
        self._exact: dict[str, tuple[Setting, int | None]] = {}
        self._templates: list[tuple[re.Pattern[str], Setting]] = []
        for s in catalogue.settings:
            template = self.template_of(s)
            if PATH_INSTANCE in template:
                self._templates.append((_template_regex(template), s))
            else:
                self._exact[template] = (s, None)
        self.parameters: tuple[ParamSpec, ...] = tuple(self._parameters()) if self.model else ()

    @property
    def extension_count(self) -> int:
        return self.model.extension_count if self.model else self.catalogue.max_extensions

    def template_of(self, setting: Setting) -> str:
        return self.override.paths.get(setting.key, setting.path)

    def xsi_type_of(self, setting: Setting) -> str:
        return self.override.types.get(setting.key, setting.tr069_type)

    def writable(self, setting: Setting) -> bool:
        return setting.writable and setting.key not in self.override.read_only

    def missing_reason(self, setting: Setting) -> str | None:
        """Why this phone lacks the setting, or None when it has it."""
        if self.model and setting.key in self.model.lacks:
            return f"{self.model.product_class} has no {setting.feature} settings"
        if setting.key in self.override.absent:
            return f"override {', '.join(self.override.files)} says this phone lacks it"
        if self.firmware is not None:
            if setting.min_firmware and self.firmware < setting.min_firmware:
                return f"firmware {self.software_version} predates {format_firmware(setting.min_firmware)}"
            if setting.until_firmware and self.firmware >= setting.until_firmware:
                return f"firmware {self.software_version} replaced it (from {format_firmware(setting.until_firmware)})"
        return None

    def path_of(self, setting: Setting, extension: int | None) -> str:
        return setting.path_for(extension, self.template_of(setting))

    def resolve_path(self, path: str) -> tuple[Setting, int | None]:
        """(setting, extension) of a concrete path as this phone names it. Raises UnknownSettingError."""
        if path in self._exact:
            return self._exact[path]
        for regex, s in self._templates:
            m = regex.match(path)
            if m:
                return s, int(m.group(1))
        candidates = list(self._exact) + [self.template_of(s) for _, s in self._templates]
        close = difflib.get_close_matches(path, candidates, n=1, cutoff=0.8)
        raise UnknownSettingError(path, close[0] if close else None)

    def _parameters(self) -> list[ParamSpec]:
        result = []
        for s in self.catalogue.settings:
            if self.missing_reason(s) is not None:
                continue
            extensions: Sequence[int | None] = range(1, self.extension_count + 1) if s.per_extension else (None,)
            xsi = self.xsi_type_of(s)
            try:
                default = to_tr069_text(dataclasses.replace(s, tr069_type=xsi), s.default)
            except ConversionError:  # an empty default of a numeric type stays empty
                default = s.default
            for n in extensions:
                result.append(
                    ParamSpec(
                        path=self.path_of(s, n),
                        xsi_type=xsi,
                        default=default,
                        writable=self.writable(s),
                        secret=s.secret,
                        setting_key=s.key,
                        element=s.element_for(n) if s.element else None,
                        extension=n,
                    )
                )
        return result


@functools.lru_cache(maxsize=8)
def _load(directory: Path) -> Catalogue:
    models_raw = _read_toml(directory / "models.toml")
    releases = {str(k): str(v) for k, v in models_raw.get("firmware", {}).get("releases", {}).items()}
    settings = [_build_setting(row, releases, i)
                for i, row in enumerate(_read_toml(directory / "settings.toml").get("setting", []))]
    if not settings:
        raise CatalogueError(f"{directory / 'settings.toml'} has no [[setting]]")
    by_key = {s.key: s for s in settings}
    rules = [_build_rule(raw, by_key) for raw in _read_toml(directory / "rules.toml").get("rule", [])]
    settings = [dataclasses.replace(s, rules=tuple(r.id for r in rules if s.key in r.settings or s.key in r.trigger))
                for s in settings]
    models = {pc: _build_model(pc, raw, settings) for pc, raw in models_raw.get("models", {}).items()}
    ciphers = _build_ciphers(_read_toml(directory / "ciphers.toml"))
    dhcp_raw = _read_toml(directory / "dhcp_options.toml")
    dhcp = {family: {int(k): str(v) for k, v in dhcp_raw.get(family, {}).items()} for family in ("dhcpv4", "dhcpv6")}
    overrides = load_overrides(directory / "overrides")
    catalogue = Catalogue(settings, models, rules, ciphers, dhcp, overrides, directory)
    for o in overrides:
        for key in list(o.paths) + list(o.types) + list(o.absent) + list(o.read_only):
            if key not in catalogue._by_key:
                raise CatalogueError(f"overrides/{o.file}: unknown setting key {key!r}")
    return catalogue


def load_catalogue(path: Path | None = None) -> Catalogue:
    """The catalogue in ``path`` (default :func:`~acs_security.mapping.paths.datamodel_dir`).

    Cached per directory. Raises CatalogueError when a file is missing or inconsistent.
    """
    directory = (path if path is not None else datamodel_dir()).resolve()
    if not directory.is_dir():
        raise CatalogueError(f"no datamodel directory at {directory}: set {DATAMODEL_ENV} to the datamodel/ directory")
    return _load(directory)
