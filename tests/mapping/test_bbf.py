"""The exported Broadband Forum data-model document validates against cwmp-datamodel-1-15."""

from __future__ import annotations

from pathlib import Path

import pytest
import xmlschema
from lxml import etree

from acs_security.mapping import load_catalogue
from acs_security.mapping.bbf import DM_NAMESPACE, export_bbf


@pytest.fixture(scope="module")
def schema(bbf_dir: Path) -> xmlschema.XMLSchema11:
    # cwmp-datamodel-1-15 is XSD 1.1 and imports the report schema by its remote URL:
    # point that URL at the local copy and allow local files only (no network).
    report = (bbf_dir / "cwmp-datamodel-report-1-0.xsd").resolve().as_uri()
    return xmlschema.XMLSchema11(
        str(bbf_dir / "cwmp-datamodel-1-15.xsd"),
        uri_mapper={"https://www.broadband-forum.org/cwmp/cwmp-datamodel-report-1-0.xsd": report},
        allow="local",
    )


@pytest.fixture(scope="module")
def document() -> bytes:
    return export_bbf()


def test_export_validates_against_the_xsd(schema, document: bytes) -> None:
    errors = list(schema.iter_errors(document.decode("utf-8")))
    assert errors == []


def test_the_schema_check_catches_a_broken_document(schema, document: bytes) -> None:
    broken = document.decode().replace('name="TLSCipherList"', 'name="TLS.CipherList"')
    assert list(schema.iter_errors(broken))


def _find(element: etree._Element, path: str, ns: dict[str, str] | None = None) -> etree._Element:
    found = element.find(path, ns)
    assert found is not None, path
    return found


def test_every_vendor_parameter_is_exported_with_its_syntax(document: bytes) -> None:
    root = etree.fromstring(document)
    ns = {"dm": DM_NAMESPACE}
    assert root.tag == f"{{{DM_NAMESPACE}}}document"
    exported = set()
    for obj in root.iterfind("model/object[@name]", ns):
        for param in obj.iterfind("parameter"):
            object_name, name = obj.get("name"), param.get("name")
            assert object_name is not None and name is not None
            exported.add(object_name + name)
    cat = load_catalogue()
    vendor = {s.path.replace("{n}", "{i}") for s in cat.settings if s.path.startswith("Device.X_")}
    assert exported == vendor
    cipher = _find(root, "model/object[@name='Device.X_CISCO_SecuritySettings.']/parameter[@name='TLSCipherList']", ns)
    assert _find(cipher, "syntax/string/size").get("maxLength") == "521"
    assert "published in the Cisco seed document" in (cipher.findtext("description") or "")
    password = _find(root, "model/object[@name='Device.X_CISCO_VPNSettings.']/parameter[@name='VPNPassword']", ns)
    assert _find(password, "syntax").get("hidden") == "true"
    table = _find(root, "model/object[@name='Device.X_CISCO_Ext.{i}.']", ns)
    assert table.get("maxEntries") == "16" and table.get("numEntriesParameter") == "X_CISCO_ExtNumberOfEntries"
    transport = _find(table, "parameter[@name='SIPTransport']")
    assert [e.get("value") for e in transport.iterfind("syntax/string/enumeration")] == ["UDP", "TCP", "TLS", "Auto"]
    assert _find(root, "import/model").get("name") == "Device:2.17"
