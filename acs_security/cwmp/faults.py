"""CWMP fault codes (TR-069 Annex A, fault code tables; ``cwmp-1-2.xsd`` CPEFaultCodeType and
ACSFaultCodeType, ``cwmp-1-4.xsd`` for 8006).
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "FaultCode",
    "fault_string",
    "is_valid_fault_code",
    "is_cpe_fault_code",
    "soap_fault_code",
]


class FaultCode(IntEnum):
    """Every standard ACS (8000-8006) and CPE (9000-9032) fault code; ``.string`` is its text."""

    # ACS faults, sent by the ACS to the CPE.
    METHOD_NOT_SUPPORTED_ACS = 8000
    REQUEST_DENIED_ACS = 8001
    INTERNAL_ERROR_ACS = 8002
    INVALID_ARGUMENTS_ACS = 8003
    RESOURCES_EXCEEDED_ACS = 8004
    RETRY_REQUEST = 8005
    ACS_VERSION_INCOMPATIBLE = 8006
    # CPE faults, sent by the CPE to the ACS.
    METHOD_NOT_SUPPORTED = 9000
    REQUEST_DENIED = 9001
    INTERNAL_ERROR = 9002
    INVALID_ARGUMENTS = 9003
    RESOURCES_EXCEEDED = 9004
    INVALID_PARAMETER_NAME = 9005
    INVALID_PARAMETER_TYPE = 9006
    INVALID_PARAMETER_VALUE = 9007
    NON_WRITABLE_PARAMETER = 9008
    NOTIFICATION_REQUEST_REJECTED = 9009
    FILE_TRANSFER_FAILURE = 9010
    UPLOAD_FAILURE = 9011
    FILE_TRANSFER_SERVER_AUTHENTICATION_FAILURE = 9012
    UNSUPPORTED_FILE_TRANSFER_PROTOCOL = 9013
    FILE_TRANSFER_MULTICAST_JOIN_FAILURE = 9014
    FILE_TRANSFER_SERVER_UNREACHABLE = 9015
    FILE_TRANSFER_FILE_UNREACHABLE = 9016
    FILE_TRANSFER_INCOMPLETE = 9017
    FILE_TRANSFER_FILE_CORRUPTED = 9018
    FILE_TRANSFER_FILE_AUTHENTICATION_FAILURE = 9019
    FILE_TRANSFER_WINDOW_EXCEEDED = 9020
    CANCEL_TRANSFER_NOT_PERMITTED = 9021
    INVALID_UUID_FORMAT = 9022
    UNKNOWN_EXECUTION_ENVIRONMENT = 9023
    DISABLED_EXECUTION_ENVIRONMENT = 9024
    DEPLOYMENT_UNIT_ENVIRONMENT_MISMATCH = 9025
    DUPLICATE_DEPLOYMENT_UNIT = 9026
    SYSTEM_RESOURCES_EXCEEDED = 9027
    UNKNOWN_DEPLOYMENT_UNIT = 9028
    INVALID_DEPLOYMENT_UNIT_STATE = 9029
    INVALID_DEPLOYMENT_UNIT_UPDATE_DOWNGRADE = 9030
    INVALID_DEPLOYMENT_UNIT_UPDATE_UNSPECIFIED_VERSION = 9031
    INVALID_DEPLOYMENT_UNIT_UPDATE_VERSION_EXISTS = 9032

    @property
    def string(self) -> str:
        """The standard FaultString of this code."""
        return _STRINGS[self.value]

    @property
    def soap_faultcode(self) -> str:
        """``Client`` or ``Server``, the SOAP faultcode this code is sent with."""
        return soap_fault_code(self.value)


_STRINGS: dict[int, str] = {
    8000: "Method not supported",
    8001: "Request denied (no reason specified)",
    8002: "Internal error",
    8003: "Invalid arguments",
    8004: "Resources exceeded",
    8005: "Retry request",
    8006: "ACS version incompatible with CPE",
    9000: "Method not supported",
    9001: "Request denied (no reason specified)",
    9002: "Internal error",
    9003: "Invalid arguments",
    9004: "Resources exceeded",
    9005: "Invalid parameter name",
    9006: "Invalid parameter type",
    9007: "Invalid parameter value",
    9008: "Attempt to set a non-writable parameter",
    9009: "Notification request rejected",
    9010: "File transfer failure",
    9011: "Upload failure",
    9012: "File transfer server authentication failure",
    9013: "Unsupported protocol for file transfer",
    9014: "File transfer failure: unable to join multicast group",
    9015: "File transfer failure: unable to contact file server",
    9016: "File transfer failure: unable to access file",
    9017: "File transfer failure: unable to complete download",
    9018: "File transfer failure: file corrupted",
    9019: "File transfer failure: file authentication failure",
    9020: "File transfer failure: unable to complete download within specified time windows",
    9021: "Cancelation of file transfer not permitted in current transfer state",
    9022: "Invalid UUID format",
    9023: "Unknown Execution Environment",
    9024: "Disabled Execution Environment",
    9025: "Deployment Unit to Execution Environment mismatch",
    9026: "Duplicate Deployment Unit",
    9027: "System resources exceeded",
    9028: "Unknown Deployment Unit",
    9029: "Invalid Deployment Unit state",
    9030: "Invalid Deployment Unit Update: downgrade not permitted",
    9031: "Invalid Deployment Unit Update: version not specified",
    9032: "Invalid Deployment Unit Update: version already exists",
}

# SOAP faultcode "Client" marks faults caused by the content of the request (TR-069 3.5 and
# the fault tables of Annex A: 9003, 9005-9008 on the CPE side and their ACS counterpart
# 8003); every other code is a "Server" fault.
_CLIENT_CODES = frozenset({8003, 9003, 9005, 9006, 9007, 9008})


def is_valid_fault_code(code: int) -> bool:
    """True for a code the CWMP schema allows in a Fault: 8000-8899 or 9000-9899."""
    return 8000 <= code <= 8899 or 9000 <= code <= 9899


def is_cpe_fault_code(code: int) -> bool:
    """True for a CPE fault code (9000-9899, vendor codes 9800-9899 included)."""
    return 9000 <= code <= 9899


def fault_string(code: int) -> str:
    """The standard FaultString for ``code``; vendor and unassigned codes get a generic text."""
    text = _STRINGS.get(code)
    if text is not None:
        return text
    if 8800 <= code <= 8899 or 9800 <= code <= 9899:
        return "Vendor-specific fault"
    return "Fault"


def soap_fault_code(code: int) -> str:
    """``"Client"`` for 8003, 9003 and 9005-9008, ``"Server"`` for every other code."""
    return "Client" if code in _CLIENT_CODES else "Server"
