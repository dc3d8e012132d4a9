"""Device registry: what an Inform tells about a device, as a record for the store.

Pure: the Inform, the time and the peer address come in; an InformRecord goes out.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from acs_security.cwmp import messages as m
from acs_security.cwmp.values import format_value
from acs_security.store.records import InformRecord, make_device_id

__all__ = ["inform_record", "MANAGEMENT_SERVER"]

MANAGEMENT_SERVER = "Device.ManagementServer."
# TR-098 devices report InternetGatewayDevice.*; the phones speak TR-181 (Device:2), but
# reading both costs nothing and keeps the registry right for either root.
_ROOTS = ("Device.", "InternetGatewayDevice.")


def _param(values: Mapping[str, object], suffix: str) -> str | None:
    for root in _ROOTS:
        value = values.get(root + suffix)
        if value is not None:
            return str(value)
    return None


def inform_record(inform: m.Inform, *, now: float, remote: str | None) -> InformRecord:
    """The registry's view of one Inform (TR-069 section 3.7.1.5 and Table 4/A.3.3.1)."""
    values = inform.parameter_map
    dev = inform.device_id
    codes = tuple(inform.event_codes)
    return InformRecord(
        device_id=make_device_id(dev.oui, dev.product_class, dev.serial_number),
        oui=dev.oui,
        product_class=dev.product_class,
        serial_number=dev.serial_number,
        manufacturer=dev.manufacturer,
        software_version=_param(values, "DeviceInfo.SoftwareVersion"),
        connection_request_url=_param(values, "ManagementServer.ConnectionRequestURL"),
        udp_connection_request_address=_param(
            values, "ManagementServer.UDPConnectionRequestAddress"
        ),
        parameter_key=_param(values, "ManagementServer.ParameterKey"),
        # TR-069 Annex K: where XMPP connection requests go; empty means none.
        xmpp_jid=_param(values, "ManagementServer.ConnReqJabberID") or None,
        events=codes,
        inform_time=datetime.fromtimestamp(now, UTC),
        remote_address=remote,
        parameters=tuple(
            (p.name, format_value(p.type, p.value), p.type) for p in inform.parameters
        ),
        # "0 BOOTSTRAP": the device is new or was reset; forget what was believed of it.
        bootstrap="0 BOOTSTRAP" in codes,
    )

