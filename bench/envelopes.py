"""The CWMP bytes the benchmarks send and parse, built once with the project's own codec.

They are the envelopes a Cisco phone of the simulator sends (the forced-inform parameters of
``acs_security.sim.phone``), so the codec figure, the load generator and the bare baseline all
work on the same real bytes. Pure: no I/O.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from acs_security.cwmp import messages as m
from acs_security.cwmp.soap import CWMP_1_2, build_envelope

__all__ = [
    "MODEL",
    "FIRMWARE",
    "inform_bytes",
    "spv_message",
    "spv_bytes",
    "spv_response_bytes",
    "spa_response_bytes",
    "inform_response_bytes",
    "cwmp_id_of",
]

MODEL = "CP-8851-3PCC"
FIRMWARE = "sip88xx.12-0-1MPP0001-276"
_TIME = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
_ID = re.compile(rb"<cwmp:ID[^>]*>([^<]*)</cwmp:ID>")


def inform_bytes(serial: str, *, event: str = "2 PERIODIC", cr_url: str = "",
                 parameter_key: str = "", cwmp_id: str = "1") -> bytes:
    """A 10-parameter Inform of a CP-8851 on firmware 12.0(1) (what the simulator's phones
    report: TR-069 A.3.3.1 forced-inform parameters plus the periodic-inform settings)."""
    ms = "Device.ManagementServer."
    params = (
        m.ParameterValue("Device.RootDataModelVersion", "2.12", "string"),
        m.ParameterValue("Device.DeviceInfo.HardwareVersion", "V03", "string"),
        m.ParameterValue("Device.DeviceInfo.SoftwareVersion", FIRMWARE, "string"),
        m.ParameterValue("Device.DeviceInfo.ProvisioningCode", "", "string"),
        m.ParameterValue("Device.DeviceInfo.UpTime", 86400, "unsignedInt"),
        m.ParameterValue(ms + "ParameterKey", parameter_key, "string"),
        m.ParameterValue(ms + "ConnectionRequestURL", cr_url, "string"),
        m.ParameterValue(ms + "PeriodicInformEnable", True, "boolean"),
        m.ParameterValue(ms + "PeriodicInformInterval", 3600, "unsignedInt"),
        m.ParameterValue(ms + "ConnectionRequestUsername", f"cr-{serial}", "string"),
    )
    inform = m.Inform(
        m.DeviceId("Cisco Systems, Inc.", "00000C", MODEL, serial),
        (m.EventStruct(event, ""),), 1, _TIME, 0, params,
    )
    return build_envelope(inform, namespace=CWMP_1_2, cwmp_id=cwmp_id)


def spv_message(count: int = 20) -> m.SetParameterValues:
    """A SetParameterValues of ``count`` parameters of mixed types, as a policy push sends."""
    base = "Device.X_CISCO_SecuritySettings."
    params = []
    for i in range(count):
        kind = i % 4
        if kind == 0:
            params.append(m.ParameterValue(f"{base}Setting{i}.CipherList",
                                           "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL", "string"))
        elif kind == 1:
            params.append(m.ParameterValue(f"{base}Setting{i}.Enable", True, "boolean"))
        elif kind == 2:
            params.append(m.ParameterValue(f"{base}Setting{i}.Port", 5061, "unsignedInt"))
        else:
            params.append(m.ParameterValue(f"{base}Setting{i}.Domains",
                                           "acs.example.net,sip.example.net", "string"))
    return m.SetParameterValues(tuple(params), "acs-sec-job-1-bench")


def spv_bytes(count: int = 20, cwmp_id: str = "acs-1") -> bytes:
    return build_envelope(spv_message(count), namespace=CWMP_1_2, cwmp_id=cwmp_id)


def spv_response_bytes(cwmp_id: str) -> bytes:
    """The CPE's SetParameterValuesResponse (status 0) to the request with ``cwmp_id``."""
    return build_envelope(m.SetParameterValuesResponse(0), namespace=CWMP_1_2, cwmp_id=cwmp_id)


def spa_response_bytes(cwmp_id: str) -> bytes:
    """The CPE's SetParameterAttributesResponse to the request with ``cwmp_id``."""
    return build_envelope(m.SetParameterAttributesResponse(), namespace=CWMP_1_2, cwmp_id=cwmp_id)


def inform_response_bytes(cwmp_id: str = "1") -> bytes:
    return build_envelope(m.InformResponse(1), namespace=CWMP_1_2, cwmp_id=cwmp_id)


def cwmp_id_of(envelope: bytes) -> str | None:
    """The cwmp:ID header of an envelope the ACS sent (a regex: the load generator must not
    spend its CPU parsing what it only echoes)."""
    found = _ID.search(envelope)
    return found.group(1).decode() if found else None
