"""Validation of a set of values: each value, what the model has, and the cross-setting
rules of rules.toml (the seeds' "X needs Y")."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from acs_security.mapping.catalogue import Catalogue, ModelView, load_catalogue
from acs_security.mapping.errors import UnknownSettingError, ValidationError
from acs_security.mapping.records import Condition, Rule, Setting
from acs_security.mapping.validators import validate_value

__all__ = ["validate_values", "normalise_keys"]


def _resolve(view: ModelView, key: str) -> tuple[Setting, int | None]:
    found = view.catalogue.find(key)
    if found is not None:
        return found
    if key.startswith("Device."):
        return view.resolve_path(key)  # a path as this model names it (overrides)
    return view.catalogue.resolve(key)  # raises, with the closest element


def normalise_keys(values: Mapping[str, str | None], catalogue: Catalogue, view: ModelView) -> dict[str, str]:
    """Known values keyed by concrete key (element, or path for web-only settings).

    Unknown keys and None values are left out: they say nothing about the phone.
    """
    result: dict[str, str] = {}
    for key, value in values.items():
        if value is None:
            continue
        try:
            setting, n = _resolve(view, key)
        except UnknownSettingError:
            continue
        if setting.per_extension and n is None:
            continue
        result[setting.concrete_key(n)] = value
    return result


class _Evaluator:
    def __init__(self, cat: Catalogue, view: ModelView, given: Mapping[str, str], current: Mapping[str, str],
                 extensions: Iterable[int]) -> None:
        self.cat = cat
        self.view = view
        self.given = given
        self.current = current
        self.extensions = tuple(extensions)

    def setting(self, key: str) -> Setting:
        return self.cat.setting(key)

    def effective(self, key: str, n: int | None) -> str:
        setting = self.setting(key)
        concrete = setting.concrete_key(n if setting.per_extension else None)
        if concrete in self.given:
            return self.given[concrete]
        if concrete in self.current:
            return self.current[concrete]
        return setting.default

    def holds(self, cond: Condition, n: int | None) -> bool:
        setting = self.setting(cond.setting)
        if cond.any_extension and setting.per_extension:
            return any(self._test(cond, self.effective(cond.setting, m), m) for m in self.extensions)
        return self._test(cond, self.effective(cond.setting, n), n)

    def _test(self, cond: Condition, value: str, n: int | None) -> bool:
        op = cond.operand
        if cond.test == "equals":
            return value == op
        if cond.test == "in":
            return value in op  # type: ignore[operator]
        if cond.test == "not_in":
            return value not in op  # type: ignore[operator]
        if cond.test == "nonempty":
            return (value.strip() != "") is bool(op)
        if cond.test == "prefix":
            return any(value.lower().startswith(p.lower()) for p in op)  # type: ignore[union-attr]
        # contains_host_of: the domain list covers the host of the URL named by the operand.
        host = (urlsplit(self.effective(str(op), n)).hostname or "").lower().rstrip(".")
        domains = [d.strip().lower().rstrip(".") for d in value.split(",") if d.strip()]
        return bool(host) and any(host == d or host.endswith("." + d) for d in domains)

    def triggered(self, rule: Rule, n: int | None) -> bool:
        keys = rule.trigger or rule.settings
        for key in keys:
            setting = self.setting(key)
            if setting.per_extension:
                exts: Iterable[int] = (n,) if n is not None else self.extensions
                if any(setting.concrete_key(m) in self.given for m in exts):
                    return True
            elif setting.concrete_key() in self.given:
                return True
        return False

    def check(self, rule: Rule) -> list[ValidationError]:
        if any(self.view.missing_reason(self.setting(k)) for k in rule.settings):
            return []
        per_ext = any(self.setting(c.setting).per_extension and not c.any_extension for c in rule.when + rule.require)
        errors = []
        for n in self.extensions if per_ext else (None,):
            if not self.triggered(rule, n) or not all(self.holds(c, n) for c in rule.when):
                continue
            failed = [c for c in rule.require if not self.holds(c, n)]
            if rule.require and not failed:
                continue
            blame = failed[0] if failed else rule.when[0]
            setting = self.setting(blame.setting)
            ext = n if setting.per_extension and not blame.any_extension else None
            shown = None if (setting.per_extension and ext is None) else self.effective(blame.setting, ext)
            allowed = " and ".join(c.describe() for c in failed) if failed else ""
            errors.append(
                ValidationError(
                    setting, shown, f"{rule.message} (rule {rule.id}; seed {rule.seed})", allowed,
                    extension=ext, severity=rule.severity, rule_id=rule.id,
                )
            )
        return errors


def validate_values(
    values: Mapping[str, str | None],
    *,
    model: str | None = None,
    software_version: str | None = None,
    current: Mapping[str, str | None] | None = None,
    catalogue: Catalogue | None = None,
    include_warnings: bool = False,
) -> list[ValidationError]:
    """Every problem of a set of values the phone would refuse, in key order, then rules.

    ``values`` are keyed by cfg.xml element (concrete, e.g. ``SIP_Transport_1_``), or by
    TR-069 path for web-only settings; None means "leave unchanged" and is skipped.
    ``current`` holds the phone's known values (same keys) so that a rule sees the values
    the change does not touch; missing ones count as defaults. With ``model`` the
    extension numbers, the settings the model lacks and firmware bounds are checked too.
    Warnings (rules that say a value has no effect) are included only on request.
    Raises UnknownModelError for an unknown model; every other problem is returned.
    """
    cat = catalogue if catalogue is not None else load_catalogue()
    view = cat.view(model, software_version)
    errors: list[ValidationError] = []
    given: dict[str, str] = {}
    seen_ext: set[int] = {1}
    for key, value in values.items():
        if value is None:
            continue
        try:
            setting, n = _resolve(view, key)
        except UnknownSettingError as exc:
            errors.append(ValidationError(key, None, str(exc), "a cfg.xml element or TR-069 path of the catalogue"))
            continue
        if setting.per_extension and n is None:
            errors.append(ValidationError(
                setting, value, "per-extension setting: name the extension, e.g. " + str(setting.element_for(1))))
            continue
        if n is not None and n > view.extension_count:
            what = view.model.product_class if view.model else "no supported model"
            errors.append(ValidationError(setting, value, f"{what} has extensions 1-{view.extension_count} only",
                                          extension=n))
            continue
        reason = view.missing_reason(setting)
        if reason is not None:
            errors.append(ValidationError(setting, value, f"this phone does not have it: {reason}", extension=n))
            continue
        if not view.writable(setting):
            errors.append(ValidationError(setting, value, "read-only: the phone reports it and the ACS cannot set it",
                                          extension=n))
            continue
        try:
            validate_value(setting, value, catalogue=cat, extension=n)
        except ValidationError as exc:
            errors.append(exc)
        given[setting.concrete_key(n)] = value
        if n is not None:
            seen_ext.add(n)
    known = normalise_keys(current or {}, cat, view)
    for key in known:
        found = cat.find(key)
        if found is not None and found[1] is not None:
            seen_ext.add(found[1])
    extensions = range(1, view.extension_count + 1) if view.model else sorted(seen_ext)
    evaluator = _Evaluator(cat, view, given, known, extensions)
    for rule in cat.rules:
        errors.extend(evaluator.check(rule))
    if not include_warnings:
        errors = [e for e in errors if e.severity == "error"]
    return errors
