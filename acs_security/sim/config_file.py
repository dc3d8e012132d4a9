"""A simulated phone's cfg.xml, both ways (pure): installing a downloaded one, and writing
its configuration for an Upload.

Installing follows the phone's own rules (reference section 1, seeds 000/001): the file is
read like any cfg.xml (unreadable: TransferComplete 9018 "file corrupted or otherwise
unusable", TR-069 A.3.3.2 / Table 59); elements the phone does not have are ignored, as a
real phone ignores unknown tags; ``<Tag/>`` changes nothing; every value it does have is
checked by the data model's validators and cross-setting rules against the phone's other
values, and the file is applied all or nothing (one refused value: 9018, nothing changed).
A setting that applies at boot makes the phone restart after installing it, so its
TransferComplete comes with "1 BOOT".

The phone's configuration for an Upload holds every setting it has with a cfg.xml element,
in cfg.xml form; a password is written as ``<Tag/>`` ("leave as is"), as the phone never
reads a password back (TR-181: "When read, this parameter returns an empty string").
"""

from __future__ import annotations

import dataclasses

from acs_security.mapping import CfgXmlError, parse_cfgxml, render_cfgxml, validate_values
from acs_security.mapping.convert import ConversionError, from_tr069_text, to_tr069_text
from acs_security.mapping.errors import MappingError
from acs_security.sim.faults import FaultKind
from acs_security.sim.phone import Phone, canonical_text

__all__ = ["install_config", "phone_config", "render_phone_config"]

_CONFIG_FILE = "3 Vendor Configuration File"


def phone_config(phone: Phone, *, secrets: bool = False) -> dict[str, str | None]:
    """Element -> cfg.xml value of every setting the phone has (secrets as None unless
    ``secrets``: what the phone itself knows, for its own rules)."""
    cat = phone.env.catalogue
    out: dict[str, str | None] = {}
    for path, element in phone.table.element_of.items():
        info = phone.table.params.get(path)
        if info is None or info.setting_key is None:
            continue
        if info.secret and not secrets:
            out[element] = None
            continue
        setting = cat.setting(info.setting_key)
        try:
            out[element] = from_tr069_text(dataclasses.replace(setting, tr069_type=info.xsi_type),
                                           phone.value(path))
        except ConversionError:
            continue  # an empty factory value of a numeric setting: not written
    for element, info in phone.table.cfg_only.items():
        out[element] = None if info.secret and not secrets else phone.cfg_value(element)
    return out


def render_phone_config(phone: Phone) -> bytes:
    """The phone's configuration as a ``<flat-profile>`` (for an Upload)."""
    cat = phone.env.catalogue
    values = phone_config(phone)
    try:
        return render_cfgxml(values, catalogue=cat)
    except MappingError:
        good = {}
        for element, value in values.items():
            try:
                render_cfgxml({element: value}, catalogue=cat)
            except MappingError:
                continue
            good[element] = value
        return render_cfgxml(good, catalogue=cat)


def install_config(phone: Phone, body: bytes) -> tuple[int, str, bool]:
    """Install a downloaded cfg.xml: (0, "", reboots) or (9018, why, False) with nothing
    changed. ``why`` names lines and counts, never a value (values may be passwords)."""
    if phone.faults & FaultKind.REFUSE_FILE:
        return 9018, "this firmware refuses the configuration file", False
    cat = phone.env.catalogue
    table = phone.table
    try:
        cfg = parse_cfgxml(body, source="download", catalogue=cat)
    except CfgXmlError as exc:
        return 9018, f"cfg.xml unreadable at line {exc.line}, column {exc.column}", False
    view = cat.view(table.product_class, table.software_version)
    given: dict[str, str] = {}
    targets: dict[str, str] = {}  # element -> where the phone keeps it (a path, or the element)
    for element, item in cfg.values.items():
        if item.value is None:
            continue
        found = cat.find(element)
        if found is None:  # pragma: no cover - unknown elements are apart already
            continue
        setting, n = found
        if element in table.cfg_only:
            targets[element] = element
        else:
            path = view.path_of(setting, n)
            info = table.params.get(path)
            if info is None or not info.writable:
                continue  # the phone does not have it: ignored, as an unknown tag
            targets[element] = path
        given[element] = item.value
    current = {k: v for k, v in phone_config(phone, secrets=True).items() if v is not None}
    errors = validate_values(given, model=table.product_class, software_version=table.software_version,
                             current=current, catalogue=cat)
    if errors:
        return 9018, f"cfg.xml refused: {len(errors)} invalid value(s)", False
    updates: dict[str, str] = {}
    reboot = False
    for element, value in given.items():
        target = targets[element]
        info = table.cfg_only.get(element) if target == element else table.params[target]
        assert info is not None
        if target == element:
            updates[target] = value
        else:
            setting = cat.setting(info.setting_key or element)
            text = to_tr069_text(dataclasses.replace(setting, tr069_type=info.xsi_type), value)
            updates[target] = canonical_text(info.xsi_type, text)
        reboot = reboot or info.reboot
    phone.store(updates)
    if phone.env.listener is not None and updates:
        phone.env.listener.phone_changed(phone, tuple(updates), True)
    return 0, "", reboot
