"""cfg.xml <-> TR-069 translation for one model and firmware, and the phone's answer to a
SetParameterValues of one parameter (what the simulator replies).

Fault codes (TR-069 Table 59 / A.5): 9005 invalid parameter name, 9006 invalid parameter
type, 9007 invalid parameter value, 9008 attempt to set a non-writable parameter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from acs_security.mapping.catalogue import Catalogue, load_catalogue
from acs_security.mapping.cfgxml import CfgXml
from acs_security.mapping.convert import ConversionError, from_tr069_text, strip_xsi_prefix, to_tr069_text
from acs_security.mapping.errors import InvalidValues, UnknownSettingError, ValidationError
from acs_security.mapping.records import Tr069Param
from acs_security.mapping.rules import validate_values
from acs_security.mapping.validators import validate_value

__all__ = ["Tr069Fault", "validate_tr069", "cfgxml_to_tr069", "tr069_to_cfgxml"]


class Tr069Fault(NamedTuple):
    """A CPE fault for one parameter: code 9005-9008 and a message (no secret in it)."""

    code: int
    message: str


def validate_tr069(
    path: str,
    value: str,
    xsi_type: str,
    *,
    product_class: str,
    software_version: str | None = None,
    catalogue: Catalogue | None = None,
) -> Tr069Fault | None:
    """None when the phone would accept ``path = value`` in a SetParameterValues, else the
    fault it answers: 9005 unknown name, 9008 not writable, 9006 wrong xsi type, 9007 a
    value the phone refuses. Raises UnknownModelError for an unknown product class.
    """
    cat = catalogue if catalogue is not None else load_catalogue()
    view = cat.view(product_class, software_version)
    try:
        setting, n = view.resolve_path(path)
    except UnknownSettingError:
        return Tr069Fault(9005, f"{path}: no such parameter")
    reason = view.missing_reason(setting)
    if reason is not None or (n is not None and n > view.extension_count):
        return Tr069Fault(9005, f"{path}: no such parameter on this phone")
    if not view.writable(setting):
        return Tr069Fault(9008, f"{path} is not writable")
    expected = view.xsi_type_of(setting)
    if strip_xsi_prefix(xsi_type) != expected:
        return Tr069Fault(9006, f"{path} is xsd:{expected}, not {xsi_type}")
    try:
        cfg_value = from_tr069_text(dataclasses.replace(setting, tr069_type=expected), value)
        validate_value(setting, cfg_value, catalogue=cat, extension=n)
    except ConversionError as exc:
        return Tr069Fault(exc.fault_code, f"{path}: {'invalid value' if setting.secret else exc}")
    except ValidationError as exc:
        return Tr069Fault(9007, str(exc))
    return None


def cfgxml_to_tr069(
    cfg: CfgXml | Mapping[str, str | None],
    *,
    model: str | None,
    software_version: str | None = None,
    current: Mapping[str, str | None] | None = None,
    catalogue: Catalogue | None = None,
) -> list[Tr069Param]:
    """The SetParameterValues list of a cfg.xml (or element -> value mapping) for one model.

    ``<Tag/>`` (None) elements are left out: they change nothing. Paths follow the model's
    overrides; values are in TR-069 text form. Raises InvalidValues listing every value or
    cross-setting rule the phone would refuse (nothing is translated then), and
    UnknownModelError for an unknown model.
    """
    cat = catalogue if catalogue is not None else load_catalogue()
    values = cfg.settable() if isinstance(cfg, CfgXml) else {k: v for k, v in cfg.items() if v is not None}
    errors = validate_values(values, model=model, software_version=software_version, current=current, catalogue=cat)
    if errors:
        raise InvalidValues(errors)
    view = cat.view(model, software_version)
    order = {s.key: i for i, s in enumerate(cat.settings)}
    rows = []
    for key, value in values.items():
        setting, n = cat.find(key) or view.resolve_path(key)
        xsi = view.xsi_type_of(setting)
        text = to_tr069_text(dataclasses.replace(setting, tr069_type=xsi), value)
        rows.append((order[setting.key], n or 0, Tr069Param(view.path_of(setting, n), text, xsi)))
    return [row[2] for row in sorted(rows, key=lambda r: (r[0], r[1]))]


def tr069_to_cfgxml(
    params: Iterable[tuple[str, str, str | None]],
    *,
    model: str | None = None,
    software_version: str | None = None,
    catalogue: Catalogue | None = None,
    skip_unmapped: bool = False,
) -> dict[str, str]:
    """cfg.xml element -> value of TR-069 (path, value, xsi type) triples, for one model.

    A None xsi type skips the type check. Settings without a cfg.xml element (FIPS Mode,
    status parameters) raise unless ``skip_unmapped``. Raises InvalidValues for unknown
    paths, wrong types and values the phone would refuse.
    """
    cat = catalogue if catalogue is not None else load_catalogue()
    view = cat.view(model, software_version)
    result: dict[str, str] = {}
    errors: list[ValidationError] = []
    for path, value, xsi_type in params:
        try:
            setting, n = view.resolve_path(path)
        except UnknownSettingError as exc:
            errors.append(ValidationError(path, None, str(exc), "a TR-069 path of the catalogue"))
            continue
        if setting.element is None:
            if not skip_unmapped:
                errors.append(ValidationError(setting, None, "has no cfg.xml element (web page or TR-069 only)",
                                              extension=n))
            continue
        expected = view.xsi_type_of(setting)
        try:
            if xsi_type is not None and strip_xsi_prefix(xsi_type) != expected:
                raise ConversionError(f"xsd:{expected} expected, got {xsi_type}", 9006)
            cfg_value = from_tr069_text(dataclasses.replace(setting, tr069_type=expected), value)
            validate_value(setting, cfg_value, catalogue=cat, extension=n)
        except ConversionError as exc:
            errors.append(ValidationError(setting, value, str(exc) if not setting.secret else "wrong type",
                                          extension=n))
            continue
        except ValidationError as exc:
            errors.append(exc)
            continue
        element = setting.element_for(n)
        assert element is not None
        result[element] = cfg_value
    if errors:
        raise InvalidValues(errors)
    return result
