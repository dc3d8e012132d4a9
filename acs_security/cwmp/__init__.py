"""CWMP (TR-069) without I/O: messages, the SOAP codec, fault codes and the session machine.

``messages`` holds one frozen dataclass per RPC; ``soap`` parses and builds envelopes;
``session`` is the state machine the HTTP endpoint drives; ``faults`` the fault codes;
``values`` the typed parameter values.
"""

from acs_security.cwmp import messages
from acs_security.cwmp.errors import (
    CwmpError,
    CwmpProtocolError,
    MessageValidationError,
    SessionStateError,
)
from acs_security.cwmp.faults import FaultCode, fault_string
from acs_security.cwmp.messages import Fault, Inform, ParameterValue
from acs_security.cwmp.namespaces import (
    CWMP_1_0,
    CWMP_1_1,
    CWMP_1_2,
    CWMP_1_3,
    CWMP_1_4,
    NAMESPACES,
)
from acs_security.cwmp.session import (
    ACS_RPC_METHODS,
    CpeEmptyPost,
    CpeFault,
    CpeRequest,
    CpeResponse,
    Event,
    InformReceived,
    Outgoing,
    ProtocolViolation,
    Session,
    State,
)
from acs_security.cwmp.soap import (
    CONTENT_TYPE,
    DEFAULT_LIMITS,
    Envelope,
    Limits,
    build_envelope,
    parse_envelope,
)

__all__ = [
    "ACS_RPC_METHODS",
    "CONTENT_TYPE",
    "CWMP_1_0",
    "CWMP_1_1",
    "CWMP_1_2",
    "CWMP_1_3",
    "CWMP_1_4",
    "CpeEmptyPost",
    "CpeFault",
    "CpeRequest",
    "CpeResponse",
    "CwmpError",
    "CwmpProtocolError",
    "DEFAULT_LIMITS",
    "Envelope",
    "Event",
    "Fault",
    "FaultCode",
    "Inform",
    "InformReceived",
    "Limits",
    "MessageValidationError",
    "NAMESPACES",
    "Outgoing",
    "ParameterValue",
    "ProtocolViolation",
    "Session",
    "SessionStateError",
    "State",
    "build_envelope",
    "fault_string",
    "messages",
    "parse_envelope",
]
