"""CWMP messages as frozen dataclasses, one class per RPC (TR-069 Annex A, ``cwmp-1-2.xsd``).

Constructors check the schema's limits (string lengths, patterns, ranges, list sizes) and raise
:class:`MessageValidationError`; a message that exists is a message the codec can send.
Sequences are stored as tuples (lists are accepted and converted). Reprs never show passwords:
``Download``/``Upload`` hide their ``password`` and :class:`ParameterValue` masks the value of
secret-looking parameters (``...Password``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar

from acs_security.cwmp.checks import (
    UINT_MAX,
    check_bool,
    check_file_type,
    check_int,
    check_str,
    check_time,
    fail,
    set_field,
    tuple_of,
)
from acs_security.cwmp.faults import fault_string, is_valid_fault_code
from acs_security.cwmp.structs import (
    ArgStruct,
    DeviceId,
    EventStruct,
    ParameterAttribute,
    ParameterInfo,
    ParameterValue,
    SetParameterAttributesStruct,
    SetParameterValuesFault,
    TransferCompleteFault,
)
from acs_security.cwmp.values import ParamValue

__all__ = [
    "ACS_REQUEST_TYPES",
    "CPE_REQUEST_TYPES",
    "RESPONSE_TYPES",
    "UNKNOWN_TIME",
    "AddObject", "AddObjectResponse", "ArgStruct", "AutonomousTransferComplete",
    "AutonomousTransferCompleteResponse", "DeleteObject", "DeleteObjectResponse", "DeviceId",
    "Download", "DownloadResponse", "EventStruct", "FactoryReset", "FactoryResetResponse",
    "Fault", "GetParameterAttributes", "GetParameterAttributesResponse", "GetParameterNames",
    "GetParameterNamesResponse", "GetParameterValues", "GetParameterValuesResponse",
    "GetRPCMethods", "GetRPCMethodsResponse", "Inform", "InformResponse", "Kicked",
    "KickedResponse", "Message", "ParameterAttribute", "ParameterInfo", "ParameterValue",
    "Reboot", "RebootResponse", "RequestDownload", "RequestDownloadResponse", "ScheduleInform",
    "ScheduleInformResponse", "SetParameterAttributes", "SetParameterAttributesResponse",
    "SetParameterAttributesStruct", "SetParameterValues", "SetParameterValuesFault",
    "SetParameterValuesResponse", "TransferComplete", "TransferCompleteFault",
    "TransferCompleteResponse", "UnknownMessage", "Upload", "UploadResponse",
]

#: TR-069 "Unknown Time" (A.2.1 dateTime): what a CPE without a clock reports.
UNKNOWN_TIME = datetime(1, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Message:
    """Base of every RPC message; ``rpc_name`` is its element name in the SOAP Body."""

    rpc_name: ClassVar[str] = ""


# --- CPE -> ACS requests and the ACS's responses ----------------------------------------


@dataclass(frozen=True, slots=True)
class Inform(Message):
    """The CPE's first message of every session."""

    rpc_name: ClassVar[str] = "Inform"
    device_id: DeviceId
    events: tuple[EventStruct, ...]
    max_envelopes: int
    current_time: datetime | str
    retry_count: int
    parameters: tuple[ParameterValue, ...] = ()

    def __post_init__(self) -> None:
        if type(self.device_id) is not DeviceId:
            raise fail(self, "device_id must be a DeviceId")
        tuple_of(self, "events", self.events, EventStruct)
        if len(self.events) > 64:
            raise fail(self, f"{len(self.events)} events, the schema allows 64")
        if not (type(self.max_envelopes) is int and 0 <= self.max_envelopes <= UINT_MAX
                and type(self.retry_count) is int and 0 <= self.retry_count <= UINT_MAX):
            check_int(self, "max_envelopes", self.max_envelopes, 0, UINT_MAX)
            check_int(self, "retry_count", self.retry_count, 0, UINT_MAX)
        if type(self.current_time) is not datetime:
            check_time(self, "current_time", self.current_time)
        tuple_of(self, "parameters", self.parameters, ParameterValue)

    @property
    def event_codes(self) -> tuple[str, ...]:
        """The event codes in the order the CPE sent them."""
        return tuple(event.event_code for event in self.events)

    @property
    def parameter_map(self) -> dict[str, ParamValue]:
        """The ParameterList as a dict name -> value."""
        return {param.name: param.value for param in self.parameters}


@dataclass(frozen=True, slots=True)
class InformResponse(Message):
    rpc_name: ClassVar[str] = "InformResponse"
    # TR-069: the ACS accepts one envelope per HTTP POST.
    max_envelopes: int = 1

    def __post_init__(self) -> None:
        check_int(self, "max_envelopes", self.max_envelopes, 0, UINT_MAX)


@dataclass(frozen=True, slots=True)
class TransferComplete(Message):
    rpc_name: ClassVar[str] = "TransferComplete"
    command_key: str
    fault: TransferCompleteFault
    start_time: datetime | str
    complete_time: datetime | str

    def __post_init__(self) -> None:
        check_str(self, "command_key", self.command_key, 32)
        if not isinstance(self.fault, TransferCompleteFault):
            raise fail(self, "fault must be a TransferCompleteFault")
        check_time(self, "start_time", self.start_time)
        check_time(self, "complete_time", self.complete_time)


@dataclass(frozen=True, slots=True)
class TransferCompleteResponse(Message):
    rpc_name: ClassVar[str] = "TransferCompleteResponse"


@dataclass(frozen=True, slots=True)
class AutonomousTransferComplete(Message):
    """Defined from cwmp-1-1 on."""

    rpc_name: ClassVar[str] = "AutonomousTransferComplete"
    announce_url: str
    transfer_url: str
    is_download: bool
    file_type: str
    file_size: int
    target_file_name: str
    fault: TransferCompleteFault
    start_time: datetime | str
    complete_time: datetime | str

    def __post_init__(self) -> None:
        check_str(self, "announce_url", self.announce_url, 1024)
        check_str(self, "transfer_url", self.transfer_url, 1024)
        check_bool(self, "is_download", self.is_download)
        check_file_type(self, self.file_type)
        check_int(self, "file_size", self.file_size, 0, UINT_MAX)
        check_str(self, "target_file_name", self.target_file_name, 256)
        if not isinstance(self.fault, TransferCompleteFault):
            raise fail(self, "fault must be a TransferCompleteFault")
        check_time(self, "start_time", self.start_time)
        check_time(self, "complete_time", self.complete_time)


@dataclass(frozen=True, slots=True)
class AutonomousTransferCompleteResponse(Message):
    rpc_name: ClassVar[str] = "AutonomousTransferCompleteResponse"


@dataclass(frozen=True, slots=True)
class GetRPCMethods(Message):
    """Sent by either side."""

    rpc_name: ClassVar[str] = "GetRPCMethods"


@dataclass(frozen=True, slots=True)
class GetRPCMethodsResponse(Message):
    rpc_name: ClassVar[str] = "GetRPCMethodsResponse"
    methods: tuple[str, ...]

    def __post_init__(self) -> None:
        tuple_of(self, "methods", self.methods, str)
        if not self.methods:
            raise fail(self, "the MethodList needs at least one method")
        for method in self.methods:
            check_str(self, "method", method, 64)


@dataclass(frozen=True, slots=True)
class RequestDownload(Message):
    rpc_name: ClassVar[str] = "RequestDownload"
    file_type: str
    file_type_args: tuple[ArgStruct, ...] = ()

    def __post_init__(self) -> None:
        check_file_type(self, self.file_type)
        tuple_of(self, "file_type_args", self.file_type_args, ArgStruct)
        if len(self.file_type_args) > 16:
            raise fail(self, f"{len(self.file_type_args)} FileTypeArg entries, the limit is 16")


@dataclass(frozen=True, slots=True)
class RequestDownloadResponse(Message):
    rpc_name: ClassVar[str] = "RequestDownloadResponse"


@dataclass(frozen=True, slots=True)
class Kicked(Message):
    rpc_name: ClassVar[str] = "Kicked"
    command: str
    referer: str
    arg: str
    next: str

    def __post_init__(self) -> None:
        check_str(self, "command", self.command, 32)
        check_str(self, "referer", self.referer, 64)
        check_str(self, "arg", self.arg, 256)
        check_str(self, "next", self.next, 1024)


@dataclass(frozen=True, slots=True)
class KickedResponse(Message):
    rpc_name: ClassVar[str] = "KickedResponse"
    next_url: str

    def __post_init__(self) -> None:
        check_str(self, "next_url", self.next_url, 1024)


# --- ACS -> CPE requests and the CPE's responses ----------------------------------------


@dataclass(frozen=True, slots=True)
class GetParameterNames(Message):
    rpc_name: ClassVar[str] = "GetParameterNames"
    path: str
    next_level: bool

    def __post_init__(self) -> None:
        check_str(self, "path", self.path, 256)
        check_bool(self, "next_level", self.next_level)


@dataclass(frozen=True, slots=True)
class GetParameterNamesResponse(Message):
    rpc_name: ClassVar[str] = "GetParameterNamesResponse"
    parameters: tuple[ParameterInfo, ...]

    def __post_init__(self) -> None:
        tuple_of(self, "parameters", self.parameters, ParameterInfo)


@dataclass(frozen=True, slots=True)
class GetParameterValues(Message):
    rpc_name: ClassVar[str] = "GetParameterValues"
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        tuple_of(self, "names", self.names, str)
        if not self.names:
            raise fail(self, "ParameterNames needs at least one name")
        for name in self.names:
            check_str(self, "name", name, 256)


@dataclass(frozen=True, slots=True)
class GetParameterValuesResponse(Message):
    rpc_name: ClassVar[str] = "GetParameterValuesResponse"
    parameters: tuple[ParameterValue, ...]

    def __post_init__(self) -> None:
        tuple_of(self, "parameters", self.parameters, ParameterValue)


@dataclass(frozen=True, slots=True)
class SetParameterValues(Message):
    """Atomic set of several parameters; ``parameter_key`` lands in
    ``Device.ManagementServer.ParameterKey`` when the set succeeds."""

    rpc_name: ClassVar[str] = "SetParameterValues"
    parameters: tuple[ParameterValue, ...]
    parameter_key: str = ""

    def __post_init__(self) -> None:
        tuple_of(self, "parameters", self.parameters, ParameterValue)
        check_str(self, "parameter_key", self.parameter_key, 32)
        # TR-069 A.3.2.1: a parameter named twice is a 9003 fault on the CPE; refuse it here.
        if len({param.name for param in self.parameters}) != len(self.parameters):
            raise fail(self, "a parameter appears more than once")


@dataclass(frozen=True, slots=True)
class SetParameterValuesResponse(Message):
    """Status 0: applied; 1: committed, applied after a reboot or later."""

    rpc_name: ClassVar[str] = "SetParameterValuesResponse"
    status: int

    def __post_init__(self) -> None:
        check_int(self, "status", self.status, 0, 1)


@dataclass(frozen=True, slots=True)
class GetParameterAttributes(Message):
    rpc_name: ClassVar[str] = "GetParameterAttributes"
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        tuple_of(self, "names", self.names, str)
        if not self.names:
            raise fail(self, "ParameterNames needs at least one name")
        for name in self.names:
            check_str(self, "name", name, 256)


@dataclass(frozen=True, slots=True)
class GetParameterAttributesResponse(Message):
    rpc_name: ClassVar[str] = "GetParameterAttributesResponse"
    parameters: tuple[ParameterAttribute, ...]

    def __post_init__(self) -> None:
        tuple_of(self, "parameters", self.parameters, ParameterAttribute)


@dataclass(frozen=True, slots=True)
class SetParameterAttributes(Message):
    rpc_name: ClassVar[str] = "SetParameterAttributes"
    parameters: tuple[SetParameterAttributesStruct, ...]

    def __post_init__(self) -> None:
        tuple_of(self, "parameters", self.parameters, SetParameterAttributesStruct)
        if not self.parameters:
            raise fail(self, "the ParameterList needs at least one entry")


@dataclass(frozen=True, slots=True)
class SetParameterAttributesResponse(Message):
    rpc_name: ClassVar[str] = "SetParameterAttributesResponse"


@dataclass(frozen=True, slots=True)
class AddObject(Message):
    rpc_name: ClassVar[str] = "AddObject"
    object_name: str
    parameter_key: str = ""

    def __post_init__(self) -> None:
        check_str(self, "object_name", self.object_name, 256)
        if not self.object_name.endswith("."):
            raise fail(self, f"object_name {self.object_name!r} must end with '.'")
        check_str(self, "parameter_key", self.parameter_key, 32)


@dataclass(frozen=True, slots=True)
class AddObjectResponse(Message):
    rpc_name: ClassVar[str] = "AddObjectResponse"
    instance_number: int
    status: int

    def __post_init__(self) -> None:
        check_int(self, "instance_number", self.instance_number, 1, UINT_MAX)
        check_int(self, "status", self.status, 0, 1)


@dataclass(frozen=True, slots=True)
class DeleteObject(Message):
    rpc_name: ClassVar[str] = "DeleteObject"
    object_name: str
    parameter_key: str = ""

    def __post_init__(self) -> None:
        check_str(self, "object_name", self.object_name, 256)
        if not self.object_name.endswith("."):
            raise fail(self, f"object_name {self.object_name!r} must end with '.'")
        check_str(self, "parameter_key", self.parameter_key, 32)


@dataclass(frozen=True, slots=True)
class DeleteObjectResponse(Message):
    rpc_name: ClassVar[str] = "DeleteObjectResponse"
    status: int

    def __post_init__(self) -> None:
        check_int(self, "status", self.status, 0, 1)


@dataclass(frozen=True, slots=True)
class Reboot(Message):
    rpc_name: ClassVar[str] = "Reboot"
    command_key: str = ""

    def __post_init__(self) -> None:
        check_str(self, "command_key", self.command_key, 32)


@dataclass(frozen=True, slots=True)
class RebootResponse(Message):
    rpc_name: ClassVar[str] = "RebootResponse"


@dataclass(frozen=True, slots=True)
class FactoryReset(Message):
    rpc_name: ClassVar[str] = "FactoryReset"


@dataclass(frozen=True, slots=True)
class FactoryResetResponse(Message):
    rpc_name: ClassVar[str] = "FactoryResetResponse"


@dataclass(frozen=True, slots=True)
class Download(Message):
    """``password`` is never shown in the repr."""

    rpc_name: ClassVar[str] = "Download"
    command_key: str
    file_type: str
    url: str
    username: str = ""
    password: str = field(default="", repr=False)
    file_size: int = 0
    target_file_name: str = ""
    delay_seconds: int = 0
    success_url: str = ""
    failure_url: str = ""

    def __post_init__(self) -> None:
        check_str(self, "command_key", self.command_key, 32)
        check_file_type(self, self.file_type)
        check_str(self, "url", self.url, 256)
        check_str(self, "username", self.username, 256)
        check_str(self, "password", self.password, 256)
        check_int(self, "file_size", self.file_size, 0, UINT_MAX)
        check_str(self, "target_file_name", self.target_file_name, 256)
        check_int(self, "delay_seconds", self.delay_seconds, 0, UINT_MAX)
        check_str(self, "success_url", self.success_url, 256)
        check_str(self, "failure_url", self.failure_url, 256)


@dataclass(frozen=True, slots=True)
class DownloadResponse(Message):
    """Status 0: done (times are real); 1: not yet done (times are UNKNOWN_TIME)."""

    rpc_name: ClassVar[str] = "DownloadResponse"
    status: int
    start_time: datetime | str = UNKNOWN_TIME
    complete_time: datetime | str = UNKNOWN_TIME

    def __post_init__(self) -> None:
        check_int(self, "status", self.status, 0, 1)
        check_time(self, "start_time", self.start_time)
        check_time(self, "complete_time", self.complete_time)


@dataclass(frozen=True, slots=True)
class Upload(Message):
    """``password`` is never shown in the repr."""

    rpc_name: ClassVar[str] = "Upload"
    command_key: str
    file_type: str
    url: str
    username: str = ""
    password: str = field(default="", repr=False)
    delay_seconds: int = 0

    def __post_init__(self) -> None:
        check_str(self, "command_key", self.command_key, 32)
        check_file_type(self, self.file_type)
        check_str(self, "url", self.url, 256)
        check_str(self, "username", self.username, 256)
        check_str(self, "password", self.password, 256)
        check_int(self, "delay_seconds", self.delay_seconds, 0, UINT_MAX)


@dataclass(frozen=True, slots=True)
class UploadResponse(Message):
    rpc_name: ClassVar[str] = "UploadResponse"
    status: int
    start_time: datetime | str = UNKNOWN_TIME
    complete_time: datetime | str = UNKNOWN_TIME

    def __post_init__(self) -> None:
        check_int(self, "status", self.status, 0, 1)
        check_time(self, "start_time", self.start_time)
        check_time(self, "complete_time", self.complete_time)


@dataclass(frozen=True, slots=True)
class ScheduleInform(Message):
    rpc_name: ClassVar[str] = "ScheduleInform"
    delay_seconds: int
    command_key: str = ""

    def __post_init__(self) -> None:
        check_int(self, "delay_seconds", self.delay_seconds, 0, UINT_MAX)
        check_str(self, "command_key", self.command_key, 32)


@dataclass(frozen=True, slots=True)
class ScheduleInformResponse(Message):
    rpc_name: ClassVar[str] = "ScheduleInformResponse"


# --- faults and unknown methods ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fault(Message):
    """A CWMP fault (SOAP Fault with a ``cwmp:Fault`` detail), either direction.

    An empty ``string`` becomes the code's standard FaultString.
    """

    rpc_name: ClassVar[str] = "Fault"
    code: int
    string: str = ""
    set_parameter_values_faults: tuple[SetParameterValuesFault, ...] = ()

    def __post_init__(self) -> None:
        check_int(self, "code", self.code, 8000, 9899)
        if not is_valid_fault_code(self.code):
            raise fail(self, f"code {self.code} is not a CWMP fault code (8000-8899, 9000-9899)")
        check_str(self, "string", self.string)
        if not self.string:
            set_field(self, "string", fault_string(self.code))
        tuple_of(self, "set_parameter_values_faults", self.set_parameter_values_faults,
                  SetParameterValuesFault)


@dataclass(frozen=True, slots=True)
class UnknownMessage(Message):
    """An RPC element this codec does not know (answer it with fault 8000 / 9000)."""

    name: str

    def __post_init__(self) -> None:
        check_str(self, "name", self.name)


#: What the CPE may send as a request, and the ACS's response type for each.
CPE_REQUEST_TYPES: dict[type[Message], type[Message]] = {
    Inform: InformResponse,
    TransferComplete: TransferCompleteResponse,
    AutonomousTransferComplete: AutonomousTransferCompleteResponse,
    GetRPCMethods: GetRPCMethodsResponse,
    RequestDownload: RequestDownloadResponse,
    Kicked: KickedResponse,
}

#: What the ACS may send as a request, and the CPE's response type for each.
ACS_REQUEST_TYPES: dict[type[Message], type[Message]] = {
    GetRPCMethods: GetRPCMethodsResponse,
    GetParameterNames: GetParameterNamesResponse,
    GetParameterValues: GetParameterValuesResponse,
    SetParameterValues: SetParameterValuesResponse,
    GetParameterAttributes: GetParameterAttributesResponse,
    SetParameterAttributes: SetParameterAttributesResponse,
    AddObject: AddObjectResponse,
    DeleteObject: DeleteObjectResponse,
    Reboot: RebootResponse,
    FactoryReset: FactoryResetResponse,
    Download: DownloadResponse,
    Upload: UploadResponse,
    ScheduleInform: ScheduleInformResponse,
}

#: Every response type the CPE may send.
RESPONSE_TYPES: frozenset[type[Message]] = frozenset(ACS_REQUEST_TYPES.values())
