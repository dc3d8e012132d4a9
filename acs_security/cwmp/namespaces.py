"""XML namespaces of CWMP envelopes (TR-069 A.2: SOAP 1.1 plus the CWMP namespaces)."""

from __future__ import annotations

__all__ = [
    "CWMP_1_0", "CWMP_1_1", "CWMP_1_2", "CWMP_1_3", "CWMP_1_4",
    "NAMESPACES", "SOAP_ENC", "SOAP_ENV", "XSD", "XSI",
]

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP_ENC = "http://schemas.xmlsoap.org/soap/encoding/"
XSD = "http://www.w3.org/2001/XMLSchema"
XSI = "http://www.w3.org/2001/XMLSchema-instance"

CWMP_1_0 = "urn:dslforum-org:cwmp-1-0"
CWMP_1_1 = "urn:dslforum-org:cwmp-1-1"
CWMP_1_2 = "urn:dslforum-org:cwmp-1-2"
# The 1.3 and 1.4 schemas keep target namespace cwmp-1-2, yet CPEs send these too; all five
# are accepted and every answer uses the namespace the CPE used.
CWMP_1_3 = "urn:dslforum-org:cwmp-1-3"
CWMP_1_4 = "urn:dslforum-org:cwmp-1-4"

NAMESPACES: tuple[str, ...] = (CWMP_1_0, CWMP_1_1, CWMP_1_2, CWMP_1_3, CWMP_1_4)
