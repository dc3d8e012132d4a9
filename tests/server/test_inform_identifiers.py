"""The CWMP endpoint refuses an Inform whose DeviceId holds control or bidi characters:
fault 8003 naming the field and the reason, nothing stored, no session kept (issue 13.7)."""

from __future__ import annotations

import pytest

from acs_security.cwmp import messages as m
from tests.server.harness import body_message, inform, make_harness, run

SERIAL = "FCH2231A0B1"


@pytest.fixture
def h():
    harness = make_harness()
    yield harness
    harness.close()


@pytest.mark.parametrize("field, good, bad", [
    ("SerialNumber", SERIAL, "FCH\u202e1A0B1"),
    ("ProductClass", "CP-8851-3PCC", "CP-8851\x9b3PCC"),
    ("Manufacturer", "Cisco Systems, Inc.", "Cisco\u2066 Systems"),
])
def test_inform_with_unsafe_identifier_is_refused_with_8003(h, field: str, good: str, bad: str) -> None:
    body = inform(SERIAL).replace(f"<{field}>{good}</{field}>".encode(), f"<{field}>{bad}</{field}>".encode())
    assert body != inform(SERIAL)

    async def go() -> None:
        code, _, content = await h.post(body)
        assert code == 200
        fault = body_message(content)
        assert isinstance(fault, m.Fault) and fault.code == 8003
        assert f"{field} holds U+" in fault.string and "control character" in fault.string
        # The same phone with a clean Inform is served at once.
        code, _, content = await h.post(inform(SERIAL))
        assert code == 200 and isinstance(body_message(content), m.InformResponse)

    run(h, go())
    refused = [e for e in h.log if e["outcome"] == "refused"]
    assert len(refused) == 1 and refused[0]["detail"].startswith("protocol: ") and field in refused[0]["detail"]
    assert bad not in refused[0]["detail"]
    # Only the clean Inform's device was stored.
    assert h.store.count_devices() == 1
    assert [d.serial_number for d in h.store.list_devices(limit=10, offset=0)] == [SERIAL]
