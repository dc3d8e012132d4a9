"""The vendor extension as a Broadband Forum data-model document (cwmp-datamodel-1-15).

Other ACSs import such documents (TR-106 Annex A) to learn a device's parameters. The
document imports TR-181 ``Device:2.17`` and defines, on top of it, every
``Device.X_CISCO_*`` object and parameter of the catalogue with its syntax, default and
a description that names the cfg.xml element, the web location, the seed and how the
path was obtained. Standard ``Device.ManagementServer.`` parameters are TR-181's own and
are not redefined. The per-extension table ``Device.X_CISCO_Ext.{i}.`` gets its
NumberOfEntries parameter in ``Device.``, as TR-106 A.2.4 wants for tables.
"""

from __future__ import annotations

from collections import OrderedDict

from lxml import etree

from acs_security.mapping.catalogue import Catalogue, load_catalogue
from acs_security.mapping.paths import format_firmware
from acs_security.mapping.records import PATH_INSTANCE, Setting

__all__ = ["export_bbf", "DM_NAMESPACE", "TR181_MODEL", "EXTENSION_VERSION"]

DM_NAMESPACE = "urn:broadband-forum-org:cwmp:datamodel-1-15"
TR181_FILE = "tr-181-2-17-0-cwmp.xml"
TR181_SPEC = "urn:broadband-forum-org:tr-181-2-17-0-cwmp"
TR181_MODEL = "Device:2.17"
EXTENSION_VERSION = "1.0"
_SPEC = "urn:acs-security:x-cisco-mpp-security-1-0"
_FILE = "x-cisco-mpp-security-1-0.xml"
_PROVENANCE_TEXT = {
    "seed": "published in the Cisco seed document",
    "standard": "a Broadband Forum TR-181 parameter",
    "convention": "derived by the acs-security vendor path convention (docs/decisions/0002)",
}


def _sub(parent: etree._Element, tag: str, **attrs: str) -> etree._Element:
    return etree.SubElement(parent, tag, {k.rstrip("_"): v for k, v in attrs.items()})


def _description(setting: Setting, catalogue: Catalogue) -> str:
    lines = [f"{setting.name} ({setting.location})."]
    if setting.element:
        lines.append(f"cfg.xml element: {setting.element.replace('_n_', '_{i}_')}.")
    else:
        lines.append("No cfg.xml element: web page or TR-069 only.")
    if setting.values:
        lines.append("Values exactly as the phone spells them: " + ", ".join(setting.values) + ".")
    lines.append(f"Path: {_PROVENANCE_TEXT[setting.path_provenance]}.")
    if setting.seeds:
        lines.append("Seeds: " + ", ".join(setting.seeds) + ".")
    if setting.source:
        lines.append(f"Source: {setting.source}.")
    if setting.min_firmware:
        lines.append(f"From firmware {format_firmware(setting.min_firmware)} (assumed).")
    if setting.until_firmware:
        lines.append(f"Until firmware {format_firmware(setting.until_firmware)} (assumed).")
    lacking = [pc for pc, m in catalogue.models.items() if setting.key in m.lacks]
    if lacking:
        lines.append("Not on: " + ", ".join(lacking) + ".")
    if setting.rules:
        lines.append("Rules: " + "; ".join(catalogue.rule(r).message for r in setting.rules) + ".")
    if setting.note:
        lines.append(setting.note)
    # Descriptions should not contain tabs (cwmp-datamodel Description).
    return "\n".join(lines).replace("\t", " ")


def _syntax(parent: etree._Element, setting: Setting) -> None:
    attrs = {"hidden": "true"} if setting.secret else {}
    syntax = _sub(parent, "syntax", **attrs)
    if setting.format in ("fqdn_list", "dhcp_options", "dhcpv6_options"):
        _sub(syntax, "list")
        if setting.format == "fqdn_list":
            _sub(syntax, "string")
        else:
            item = _sub(syntax, "unsignedInt")
            _sub(item, "range", minInclusive="1", maxInclusive="255")
    elif setting.tr069_type == "boolean":
        _sub(syntax, "boolean")
    elif setting.tr069_type in ("unsignedInt", "int"):
        item = _sub(syntax, setting.tr069_type)
        if setting.minimum is not None or setting.maximum is not None:
            bounds = {}
            if setting.minimum is not None:
                bounds["minInclusive"] = str(setting.minimum)
            if setting.maximum is not None:
                bounds["maxInclusive"] = str(setting.maximum)
            _sub(item, "range", **bounds)
    else:
        item = _sub(syntax, "string")
        if setting.max_length is not None:
            _sub(item, "size", maxLength=str(setting.max_length))
        for value in setting.values:
            _sub(item, "enumeration", value=value)
    _sub(syntax, "default", type_="factory", value=setting.default)


def export_bbf(catalogue: Catalogue | None = None) -> bytes:
    """The data-model document (UTF-8 XML) of every vendor (X_CISCO) parameter."""
    cat = catalogue if catalogue is not None else load_catalogue()
    root = etree.Element(f"{{{DM_NAMESPACE}}}document", {"spec": _SPEC, "file": _FILE}, nsmap={"dm": DM_NAMESPACE})
    _sub(root, "description").text = (
        "Security settings of Cisco Multiplatform (MPP) IP phones as a vendor extension of TR-181 "
        "Device:2, written by acs-security from its datamodel/ catalogue. Only "
        "Device.X_CISCO_SecuritySettings.TLSCipherList is published by Cisco; other paths follow the "
        "naming convention each description states, and can differ on a given phone."
    )
    imported = _sub(root, "import", file=TR181_FILE, spec=TR181_SPEC)
    _sub(imported, "model", name=TR181_MODEL)
    model = _sub(root, "model", name=f"X_CISCO_MPP_Device:{EXTENSION_VERSION}", base=TR181_MODEL)
    _sub(model, "description").text = "TR-181 Device:2.17 with the Cisco MPP phone security settings."

    objects: OrderedDict[str, list[Setting]] = OrderedDict()
    for setting in cat.settings:
        if not setting.path.startswith("Device.X_"):
            continue  # standard TR-181 parameters are imported, not redefined
        parent, _, _ = setting.path.rpartition(".")
        objects.setdefault(parent.replace(PATH_INSTANCE, "{i}") + ".", []).append(setting)

    tables = [name for name in objects if "{i}" in name]
    if tables:
        device = _sub(model, "object", base="Device.", access="readOnly", minEntries="1", maxEntries="1")
        for table in tables:
            param = _sub(device, "parameter", name=_num_entries(table), access="readOnly", version=EXTENSION_VERSION)
            _sub(param, "description").text = (
                f"The number of entries in the {{{{object|{table}}}}} table: one per extension.")
            syntax = _sub(param, "syntax")
            _sub(syntax, "unsignedInt")

    for name, settings in objects.items():
        attrs = {"name": name, "access": "readOnly", "version": EXTENSION_VERSION}
        if "{i}" in name:
            attrs.update(minEntries="0", maxEntries=str(cat.max_extensions), numEntriesParameter=_num_entries(name))
        else:
            attrs.update(minEntries="1", maxEntries="1")
        obj = _sub(model, "object", **attrs)
        _sub(obj, "description").text = f"{settings[0].location.replace('(n)', '(i)')} settings of the phone."
        for setting in settings:
            leaf = setting.path.rpartition(".")[2]
            param = _sub(obj, "parameter", name=leaf, access="readWrite" if setting.writable else "readOnly",
                         version=EXTENSION_VERSION)
            _sub(param, "description").text = _description(setting, cat)
            _syntax(param, setting)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def _num_entries(table: str) -> str:
    # Device.X_CISCO_Ext.{i}. -> X_CISCO_ExtNumberOfEntries (TR-106 A.2.4 naming)
    return table.split(".")[-3] + "NumberOfEntries"
