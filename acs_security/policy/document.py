"""Security policy documents: what an operator wants every targeted phone to have.

A policy is a TOML file::

    [policy]
    name = "tls-hardening"
    description = "TLS 1.2 minimum and strong ciphers"

    [settings]                       # by cfg.xml element or TR-069 path, cfg.xml value form
    TLS_Min_Version = "TLS 1.2"
    "Device.X_CISCO_SecuritySettings.TLSCipherList" = "ECDHE+AESGCM:!aNULL:!eNULL"

    [extensions]                     # per-extension settings, by element without _n_
    apply_to = "all"                 # or a list of extension numbers: [1, 2]
    SIP_Transport = "TLS"
    TLS_Name_Validate = "Yes"

or a cfg.xml ``<flat-profile>`` (its per-extension elements apply to those extensions).
Loading validates every value and the model-independent cross-setting rules with the
data model, before anything else happens; errors name the setting, the value and the rule.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from acs_security.mapping import (
    Catalogue,
    CfgXmlError,
    UnknownSettingError,
    load_catalogue,
    parse_cfgxml,
    validate_values,
)
from acs_security.mapping.records import PER_EXT_ELEMENT_SUFFIX, Setting

__all__ = ["Policy", "PolicyError", "PolicyProblem", "load_policy", "parse_policy", "MAX_POLICY_BYTES"]

MAX_POLICY_BYTES = 256 * 1024


class PolicyError(ValueError):
    """A policy that cannot be used; ``errors`` lists every problem found (text),
    ``problems`` the same with the setting concerned, and ``partial`` is the Policy of the
    lines that have no problem of their own (None when none is left, or the document could
    not be read at all), so that the guardrails can still say what they think of them."""

    def __init__(self, source: str, errors: list[str], *, problems: list[PolicyProblem] | None = None,
                 partial: Policy | None = None) -> None:
        super().__init__(f"{source}: " + "; ".join(errors))
        self.source = source
        self.errors = errors
        self.problems = problems if problems is not None else [PolicyProblem(e) for e in errors]
        self.partial = partial


@dataclass(frozen=True, slots=True)
class Policy:
    """Desired values in cfg.xml text form.

    ``settings``: concrete keys (elements such as ``TLS_Min_Version`` or ``SIP_Transport_2_``,
    or TR-069 paths for web-only settings) -> value. ``extension_settings``: per-extension
    templates (``SIP_Transport_n_``) -> value, applied to ``extensions`` ("all" or numbers).
    """

    name: str
    settings: Mapping[str, str]
    extension_settings: Mapping[str, str] = field(default_factory=dict)
    extensions: str | tuple[int, ...] = "all"
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "settings": dict(self.settings),
            "extension_settings": dict(self.extension_settings),
            "extensions": self.extensions if isinstance(self.extensions, str) else list(self.extensions),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Policy:
        ext = data.get("extensions", "all")
        return cls(
            name=str(data["name"]),
            description=str(data.get("description", "")),
            settings=dict(data.get("settings", {})),
            extension_settings=dict(data.get("extension_settings", {})),
            extensions=ext if isinstance(ext, str) else tuple(int(n) for n in ext),
        )

    def sample_values(self, extension_count: int = 1) -> dict[str, str]:
        """Every desired value as concrete keys, per-extension ones for extensions 1..n."""
        values = dict(self.settings)
        exts = range(1, extension_count + 1) if self.extensions == "all" else self.extensions
        for template, value in self.extension_settings.items():
            base = template[: -len(PER_EXT_ELEMENT_SUFFIX)]
            for n in exts:
                values[f"{base}_{n}_"] = value
        return values


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    """One problem of a policy document: what is wrong (``text``, naming the setting, the
    value and the rule), the setting's catalogue key when one is concerned, and the value
    as it may be shown (None when there is none to show or it is a secret)."""

    text: str
    setting: str | None = None
    value: str | None = None


class _Lines:
    """The lines of a document as they are checked: each problem recorded, each usable line
    kept with its setting, so that every problem of the document is found in one pass."""

    def __init__(self, cat: Catalogue) -> None:
        self.cat = cat
        self.problems: list[PolicyProblem] = []
        self.settings: dict[str, str] = {}
        self.extension_settings: dict[str, str] = {}
        self.found: dict[str, Setting] = {}  # canonical key -> setting

    def problem(self, text: str, setting: str | None = None, value: str | None = None) -> None:
        self.problems.append(PolicyProblem(text, setting, value))

    def add(self, key: str, value: Any, *, per_extension: bool) -> None:
        """Check one ``key = value`` line (name and TOML type); keep it when both are right."""
        setting = self._resolve(key, per_extension=per_extension)
        if setting is None:
            return
        canonical, found = setting
        text = self._text(key, found, value)
        if text is None:
            return
        (self.extension_settings if per_extension else self.settings)[canonical] = text
        self.found[canonical] = found

    def _resolve(self, key: str, *, per_extension: bool) -> tuple[str, Setting] | None:
        """(canonical key, setting) a policy line names (element or path), or None after a problem."""
        lookup = key
        if per_extension and not key.endswith(PER_EXT_ELEMENT_SUFFIX) and "." not in key:
            lookup = key + PER_EXT_ELEMENT_SUFFIX
        try:
            setting, n = self.cat.find(lookup) or self.cat.resolve(key)
        except UnknownSettingError as exc:
            self.problem(str(exc))
            return None
        if not setting.writable:
            self.problem(f"{key}: {setting.path} is read-only on the phone and cannot be pushed", setting.key)
            return None
        if per_extension:
            if not setting.per_extension:
                self.problem(f"{key}: not a per-extension setting; put it under [settings]", setting.key)
                return None
            return setting.key, setting
        if setting.per_extension and n is None:
            self.problem(f"{key}: a per-extension setting; put it under [extensions] or name one "
                         f"extension ({setting.element_for(1) or setting.path_for(1)})", setting.key)
            return None
        return setting.concrete_key(n), setting

    def _text(self, key: str, setting: Setting, value: Any) -> str | None:
        """The value in cfg.xml text form, or None after a problem. Values are strings as
        cfg.xml writes them; a TOML integer is taken for a number setting (port, whole
        number). Anything else is refused, naming the type given and the type expected:
        turning ``true`` into "Yes" would guess, and an enumerated setting may spell it
        "Enabled", "On" or "Yes"."""
        if isinstance(value, str):
            return value
        numeric = setting.format in _NUMERIC_FORMATS
        if numeric and isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        given = _toml_type(value)
        shown = "" if setting.secret else f" ({_toml_text(value)})"
        expected = "an integer or a string of digits" if numeric else "a string"
        if setting.values:
            quoted = [f'"{v}"' for v in setting.values]
            expected += (": " + " or ".join(quoted) if len(quoted) <= 2
                         else ": one of " + ", ".join(quoted))
            if isinstance(value, bool) and setting.format == "yesno":
                expected += f' (write {key} = "{"Yes" if value else "No"}")'
        elif not numeric:
            expected += " in cfg.xml form"
        self.problem(f"{key} ({setting.path}): a TOML {given}{shown} was given; the setting takes {expected}",
                     setting.key, None if setting.secret else _toml_text(value))
        return None


# Formats whose values are numbers: a TOML integer is their natural spelling.
_NUMERIC_FORMATS = frozenset({"port", "unsigned_int"})
_TOML_TYPES = ((bool, "boolean"), (int, "integer"), (float, "float"), (str, "string"), (list, "array"),
               (dict, "table"), (datetime, "date-time"), (date, "date"), (time, "time"))


def _toml_type(value: Any) -> str:
    return next((name for kind, name in _TOML_TYPES if isinstance(value, kind)), type(value).__name__)


def _toml_text(value: Any, limit: int = 40) -> str:
    """``value`` as TOML writes it (true, "text", [1, 2]), cut to ``limit`` characters."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, (datetime, date, time)):
        text = value.isoformat()
    elif isinstance(value, list):
        text = "[" + ", ".join(_toml_text(v, limit) for v in value[:10]) + "]"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k} = {_toml_text(v, limit)}" for k, v in list(value.items())[:10]) + "}"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def parse_policy(data: bytes, *, source: str = "<policy>", catalogue: Catalogue | None = None) -> Policy:
    """Parse and validate a TOML policy or a cfg.xml profile.

    Raises PolicyError listing every problem (syntax, unknown settings, wrong TOML types,
    invalid values, cross-setting rules) with the usable part of the document as
    ``partial``; nothing partial is returned.
    """
    cat = catalogue or load_catalogue()
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(source, [f"larger than {MAX_POLICY_BYTES} bytes"])
    if data.lstrip()[:1] == b"<":
        return _from_cfgxml(data, source, cat)
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise PolicyError(source, [f"not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(source, [f"TOML syntax: {exc}"]) from None
    except RecursionError:
        # tomllib parses nested arrays and inline tables recursively; a policy nests 2 deep.
        raise PolicyError(source, ["TOML nested too deeply (arrays or inline tables inside each other)"]) from None
    lines = _Lines(cat)
    unknown_tables = set(doc) - {"policy", "settings", "extensions"}
    if unknown_tables:
        lines.problem(f"unknown table(s) {sorted(unknown_tables)}; use [policy], [settings], [extensions]")
    meta = _table(doc, "policy", lines)
    settings_table = _table(doc, "settings", lines)
    ext_table = _table(doc, "extensions", lines)
    for key in sorted(set(meta) - {"name", "description"}):
        lines.problem(f"[policy] {key}: unknown key; [policy] takes name and description")
    name = meta.get("name") or Path(source).stem or "policy"
    description = meta.get("description", "")
    for what, value in (("name", name), ("description", description)):
        if not isinstance(value, str):
            lines.problem(f"[policy] {what}: a TOML {_toml_type(value)} was given; a string is expected")
    name, description = str(name), str(description)
    if len(name) > 64:
        lines.problem("policy name longer than 64 characters")
    for key, value in settings_table.items():
        lines.add(key, value, per_extension=False)
    apply_to = ext_table.pop("apply_to", "all")
    extensions: str | tuple[int, ...]
    if apply_to == "all":
        extensions = "all"
    elif isinstance(apply_to, list) and apply_to and all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in apply_to):
        extensions = tuple(sorted(set(apply_to)))
        if max(extensions) > cat.max_extensions:
            lines.problem(f"apply_to: no model has extension {max(extensions)} (at most {cat.max_extensions})")
    else:
        lines.problem(f'apply_to: {_toml_text(apply_to)} must be "all" or a list of extension numbers (1 or more)')
        extensions = "all"
    for key, value in ext_table.items():
        lines.add(key, value, per_extension=True)
    return _finish(lines, source, name=name, description=description, extensions=extensions,
                   nothing="the policy sets nothing")


def _table(doc: Mapping[str, Any], name: str, lines: _Lines) -> dict[str, Any]:
    value = doc.get(name, {})
    if isinstance(value, dict):
        return dict(value)
    lines.problem(f"[{name}] must be a table, not a TOML {_toml_type(value)}")
    return {}


def _finish(lines: _Lines, source: str, *, name: str, description: str = "",
            extensions: str | tuple[int, ...] = "all", nothing: str) -> Policy:
    """The Policy of the checked lines, after checking every value and the cross-setting
    rules. Raises PolicyError with every problem and the usable lines as ``partial``."""
    cat = lines.cat
    candidate = Policy(name=name, settings=lines.settings, extension_settings=lines.extension_settings,
                       extensions=extensions, description=description)
    if not candidate.settings and not candidate.extension_settings and not lines.problems:
        raise PolicyError(source, [nothing])
    # Every value, and the model-independent cross-setting rules among the values the policy
    # sets (per-extension ones checked on extension 1 as a sample); with the other problems,
    # so that one answer lists them all.
    invalid: set[str] = set()
    for err in validate_values(candidate.sample_values(1), catalogue=cat):
        shown = None if err.value is None or err.secret else err.value
        lines.problem(str(err), err.setting.key if err.setting is not None else err.key, shown)
        if err.rule_id is None and err.setting is not None:
            invalid.add(err.setting.key)
    if not lines.problems:
        return candidate
    usable = Policy(
        name=name, description=description, extensions=extensions,
        settings={k: v for k, v in lines.settings.items() if lines.found[k].key not in invalid},
        extension_settings={k: v for k, v in lines.extension_settings.items() if lines.found[k].key not in invalid},
    )
    partial = usable if usable.settings or usable.extension_settings else None
    raise PolicyError(source, [p.text for p in lines.problems], problems=lines.problems, partial=partial)


def _from_cfgxml(data: bytes, source: str, cat: Catalogue) -> Policy:
    try:
        cfg = parse_cfgxml(data, source=source, catalogue=cat)
    except CfgXmlError as exc:
        raise PolicyError(source, [str(exc)]) from None
    lines = _Lines(cat)
    for unknown in getattr(cfg, "unknown", ()):
        lines.problem(f"unknown element {unknown}")
    for key, value in cfg.settable().items():
        lines.add(key, value, per_extension=False)
    return _finish(lines, source, name=Path(source).stem or "cfgxml",
                   nothing="the profile sets nothing (only <Tag/> elements or none)")


def load_policy(path: Path, *, catalogue: Catalogue | None = None) -> Policy:
    """Read and validate a policy file. Raises PolicyError (also for unreadable files)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_POLICY_BYTES + 1)
    except OSError as exc:
        raise PolicyError(str(path), [exc.strerror or str(exc)]) from None
    return parse_policy(data, source=str(path), catalogue=catalogue)
