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

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acs_security.mapping import (
    Catalogue,
    CfgXmlError,
    UnknownSettingError,
    ValidationError,
    load_catalogue,
    parse_cfgxml,
    validate_values,
)
from acs_security.mapping.records import PER_EXT_ELEMENT_SUFFIX

__all__ = ["Policy", "PolicyError", "load_policy", "parse_policy", "MAX_POLICY_BYTES"]

MAX_POLICY_BYTES = 256 * 1024


class PolicyError(ValueError):
    """A policy that cannot be used; ``errors`` lists every problem found."""

    def __init__(self, source: str, errors: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(errors))
        self.source = source
        self.errors = errors


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


def _text_value(source: str, key: str, value: Any, errors: list[str]) -> str | None:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, (str, int)):
        return str(value)
    errors.append(f"{key}: value {value!r} must be a string (cfg.xml form)")
    return None


def _canonical(cat: Catalogue, key: str, *, per_extension: bool, errors: list[str]) -> str | None:
    """The catalogue key a policy line names (element or path), or None after an error."""
    lookup = key
    if per_extension and not key.endswith(PER_EXT_ELEMENT_SUFFIX) and "." not in key:
        lookup = key + PER_EXT_ELEMENT_SUFFIX
    try:
        setting, n = cat.find(lookup) or cat.resolve(key)
    except UnknownSettingError as exc:
        errors.append(str(exc))
        return None
    if not setting.writable:
        errors.append(f"{key}: {setting.path} is read-only on the phone and cannot be pushed")
        return None
    if per_extension:
        if not setting.per_extension:
            errors.append(f"{key}: not a per-extension setting; put it under [settings]")
            return None
        return setting.key
    if setting.per_extension and n is None:
        errors.append(
            f"{key}: a per-extension setting; put it under [extensions] or name one "
            f"extension ({setting.element_for(1) or setting.path_for(1)})"
        )
        return None
    return setting.concrete_key(n)


def parse_policy(data: bytes, *, source: str = "<policy>", catalogue: Catalogue | None = None) -> Policy:
    """Parse and validate a TOML policy or a cfg.xml profile.

    Raises PolicyError listing every problem (syntax, unknown settings, invalid values,
    cross-setting rules); nothing partial is returned.
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
    errors: list[str] = []
    unknown_tables = set(doc) - {"policy", "settings", "extensions"}
    if unknown_tables:
        errors.append(f"unknown table(s) {sorted(unknown_tables)}; use [policy], [settings], [extensions]")
    meta = doc.get("policy", {})
    name = str(meta.get("name") or Path(source).stem or "policy")
    if len(name) > 64:
        errors.append("policy name longer than 64 characters")
    settings: dict[str, str] = {}
    for key, value in dict(doc.get("settings", {})).items():
        text = _text_value(source, key, value, errors)
        canonical = _canonical(cat, key, per_extension=False, errors=errors)
        if text is not None and canonical is not None:
            settings[canonical] = text
    ext_table = dict(doc.get("extensions", {}))
    apply_to = ext_table.pop("apply_to", "all")
    extensions: str | tuple[int, ...]
    if apply_to == "all":
        extensions = "all"
    elif isinstance(apply_to, list) and apply_to and all(isinstance(n, int) and n >= 1 for n in apply_to):
        extensions = tuple(sorted(set(apply_to)))
        if max(extensions) > cat.max_extensions:
            errors.append(f"apply_to: no model has extension {max(extensions)} (at most {cat.max_extensions})")
    else:
        errors.append(f'apply_to: {apply_to!r} must be "all" or a list of extension numbers')
        extensions = "all"
    ext_settings: dict[str, str] = {}
    for key, value in ext_table.items():
        text = _text_value(source, key, value, errors)
        canonical = _canonical(cat, key, per_extension=True, errors=errors)
        if text is not None and canonical is not None:
            ext_settings[canonical] = text
    if not settings and not ext_settings and not errors:
        errors.append("the policy sets nothing")
    policy = Policy(name=name, settings=settings, extension_settings=ext_settings,
                    extensions=extensions, description=str(meta.get("description", "")))
    if not errors:
        errors.extend(_validation_errors(policy, cat))
    if errors:
        raise PolicyError(source, errors)
    return policy


def _validation_errors(policy: Policy, cat: Catalogue) -> list[str]:
    # Model-independent check: every value, and the cross-setting rules among the values
    # the policy sets (per-extension ones checked on extension 1 as a sample).
    found: list[ValidationError] = validate_values(policy.sample_values(1), catalogue=cat)
    return [str(e) for e in found]


def _from_cfgxml(data: bytes, source: str, cat: Catalogue) -> Policy:
    try:
        cfg = parse_cfgxml(data, source=source, catalogue=cat)
    except CfgXmlError as exc:
        raise PolicyError(source, [str(exc)]) from None
    errors: list[str] = [f"unknown element {u}" for u in getattr(cfg, "unknown", ())]
    values = cfg.settable()
    settings: dict[str, str] = {}
    for key, value in values.items():
        canonical = _canonical(cat, key, per_extension=False, errors=errors)
        if canonical is not None:
            settings[canonical] = value
    if not settings and not errors:
        errors.append("the profile sets nothing (only <Tag/> elements or none)")
    policy = Policy(name=Path(source).stem or "cfgxml", settings=settings)
    if not errors:
        errors.extend(_validation_errors(policy, cat))
    if errors:
        raise PolicyError(source, errors)
    return policy


def load_policy(path: Path, *, catalogue: Catalogue | None = None) -> Policy:
    """Read and validate a policy file. Raises PolicyError (also for unreadable files)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_POLICY_BYTES + 1)
    except OSError as exc:
        raise PolicyError(str(path), [exc.strerror or str(exc)]) from None
    return parse_policy(data, source=str(path), catalogue=catalogue)
