"""DeviceId fields refuse control and bidirectional control characters (issue 13.7)."""

from __future__ import annotations

import pytest

from acs_security.cwmp import messages as m
from acs_security.cwmp.errors import CwmpProtocolError, MessageValidationError
from acs_security.cwmp.session import ProtocolViolation, Session
from acs_security.cwmp.soap import parse_envelope
from tests.server.harness import inform

SERIAL = "FCH2231A0B1"

UNSAFE = [
    ("\u202e", "U+202E RIGHT-TO-LEFT OVERRIDE", "bidirectional"),
    ("\u202a", "U+202A LEFT-TO-RIGHT EMBEDDING", "bidirectional"),
    ("\u2066", "U+2066 LEFT-TO-RIGHT ISOLATE", "bidirectional"),
    ("\u2069", "U+2069 POP DIRECTIONAL ISOLATE", "bidirectional"),
    ("\u200f", "U+200F RIGHT-TO-LEFT MARK", "bidirectional"),
    ("\u061c", "U+061C ARABIC LETTER MARK", "bidirectional"),
    ("\x7f", "U+007F", "control"),
    ("\x85", "U+0085", "control"),
    ("\x9b", "U+009B", "control"),
    ("\t", "U+0009", "control"),
    ("\x1b", "U+001B", "control"),
]


@pytest.mark.parametrize("ch, named, kind", UNSAFE)
@pytest.mark.parametrize("field", ["manufacturer", "product_class", "serial_number"])
def test_device_id_refuses_control_and_bidi_characters(ch: str, named: str, kind: str, field: str) -> None:
    values = {"manufacturer": "Cisco", "oui": "00000C", "product_class": "CP-8851-3PCC",
              "serial_number": SERIAL}
    values[field] = values[field][:3] + ch + values[field][3:]
    with pytest.raises(MessageValidationError) as err:
        m.DeviceId(**values)
    text = str(err.value)
    tr069 = {"manufacturer": "Manufacturer", "product_class": "ProductClass",
             "serial_number": "SerialNumber"}[field]
    assert f"{tr069} holds {named}" in text and f"a {kind}" in text and "position 4" in text
    assert ch not in text  # the character itself never reaches a log line


def test_printable_identifiers_stay_accepted() -> None:
    # Non-ASCII letters and spaces are fine: only controls are refused.
    dev = m.DeviceId("Cisco Systems, Inc.", "00000c", "CP-8851-3PCC", "Zürich-ΩΩ 01")
    assert dev.oui == "00000C" and dev.serial_number == "Zürich-ΩΩ 01"


@pytest.mark.parametrize("raw, named", [
    ("FCH\u202e1A0B1", "U+202E"), ("FCH\x7f1", "U+007F"), ("FCH\u00851", "U+0085"),
    ("FCH&#9;1", "U+0009"), ("FCH&#x202E;1", "U+202E"), ("FCH\r\n1", "U+000A"),
])
def test_an_inform_with_such_a_serial_is_fault_8003_naming_field_and_reason(raw: str, named: str) -> None:
    body = inform(SERIAL).replace(SERIAL.encode(), raw.encode())
    with pytest.raises(CwmpProtocolError) as err:
        parse_envelope(body)
    assert err.value.fault_code == 8003 and "SerialNumber" in str(err.value) and named in str(err.value)
    # The session answers with the fault, its FaultString saying what was wrong.
    event = Session().receive(body)
    assert isinstance(event, ProtocolViolation) and event.reply.status == 200
    envelope = parse_envelope(event.reply.body)
    assert envelope is not None
    fault = envelope.message
    assert isinstance(fault, m.Fault) and fault.code == 8003
    assert fault.string.startswith("Invalid arguments: ") and "SerialNumber holds " + named in fault.string
    assert len(fault.string) <= 256
