"""Message dataclass -> the RPC element's XML text (the inside of ``<soap-env:Body>``).

Built as text, not as an lxml tree: creating elements one by one costs several times what
serialising them does, and the CWMP body is a fixed shape. Every piece of data goes through
:func:`esc`; the envelope builder checks the finished text once for characters XML 1.0 cannot
carry. Conventions (``cwmp-1-2.xsd``, TR-069 A.2): the RPC element carries the ``cwmp:``
prefix, its children are unqualified, every ``Value`` carries ``xsi:type``, every array carries
``soap-enc:arrayType`` with its item type and count, booleans are ``1``/``0``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from acs_security.cwmp import messages as m
from acs_security.cwmp.errors import MessageValidationError
from acs_security.cwmp.faults import soap_fault_code
from acs_security.cwmp.values import format_datetime, format_value, xsi_type_of

__all__ = ["encode_body", "esc"]

# Characters XML 1.0 cannot carry at all (XML 1.0 section 2.2).
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def esc(text: str) -> str:
    """Escape text for element content or a double-quoted attribute.

    CR is written as ``&#13;`` so that the receiver's end-of-line normalisation keeps it.

    Raises:
        MessageValidationError: for a character XML 1.0 cannot carry (named by code point;
        the text itself is not quoted, it may be a password).
    """
    # isprintable() is a fast C test that passes nearly all real text; only text it flags
    # (line breaks, tabs, unusual spaces, control characters) is checked character by class.
    if not text.isprintable():
        bad = _NOT_XML_CHAR.search(text)
        if bad is not None:
            raise MessageValidationError(
                f"text holds character U+{ord(bad.group()):04X}, which XML 1.0 cannot carry")
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if '"' in text:
        text = text.replace('"', "&quot;")
    if "\r" in text:
        text = text.replace("\r", "&#13;")
    return text


def _b(flag: bool) -> str:
    return "1" if flag else "0"


def _time(value: Any) -> str:
    return value if isinstance(value, str) else format_datetime(value)


def _strings(out: list[str], tag: str, items: tuple[str, ...], item_type: str) -> None:
    out.append(f'<{tag} soap-enc:arrayType="{item_type}[{len(items)}]">')
    for item in items:
        out.append(f"<string>{esc(item)}</string>")
    out.append(f"</{tag}>")


def _parameter_values(out: list[str], params: tuple[m.ParameterValue, ...],
                      std_ns: dict[str, str]) -> None:
    append = out.append
    append(f'<ParameterList soap-enc:arrayType="cwmp:ParameterValueStruct[{len(params)}]">')
    for param in params:
        type_name = param.type
        value = param.value
        if type_name == "string" and isinstance(value, str):  # always a str: ParameterValue checks it
            append(f'<ParameterValueStruct><Name>{esc(param.name)}</Name>'
                   f'<Value xsi:type="xsd:string">{esc(value)}</Value></ParameterValueStruct>')
            continue
        try:
            xsi = xsi_type_of(type_name)
            declare = ""
        except KeyError:
            # Unknown type: re-emitted as received, with its prefix declared where needed.
            xsi = type_name
            declare = ""
            prefix = type_name.partition(":")[0] if ":" in type_name else ""
            if param.type_ns is not None and prefix and std_ns.get(prefix) != param.type_ns:
                declare = f' xmlns:{prefix}="{esc(param.type_ns)}"'
            text = value
        else:
            text = format_value(type_name, value)
        append(f'<ParameterValueStruct><Name>{esc(param.name)}</Name>'
               f'<Value{declare} xsi:type="{esc(xsi)}">{esc(text)}</Value>'  # type: ignore[arg-type]
               f'</ParameterValueStruct>')
    append("</ParameterList>")


def _access_list(out: list[str], items: tuple[str, ...]) -> None:
    _strings(out, "AccessList", items, "xsd:string")


def _transfer_fault(out: list[str], fault: m.TransferCompleteFault) -> None:
    out.append(f"<FaultStruct><FaultCode>{fault.code}</FaultCode>"
               f"<FaultString>{esc(fault.string)}</FaultString></FaultStruct>")


def _inform(msg: m.Inform, out: list[str], ns: dict[str, str]) -> None:
    dev = msg.device_id
    out.append(
        f"<DeviceId><Manufacturer>{esc(dev.manufacturer)}</Manufacturer><OUI>{dev.oui}</OUI>"
        f"<ProductClass>{esc(dev.product_class)}</ProductClass>"
        f"<SerialNumber>{esc(dev.serial_number)}</SerialNumber></DeviceId>"
        f'<Event soap-enc:arrayType="cwmp:EventStruct[{len(msg.events)}]">'
    )
    for event in msg.events:
        out.append(f"<EventStruct><EventCode>{esc(event.event_code)}</EventCode>"
                   f"<CommandKey>{esc(event.command_key)}</CommandKey></EventStruct>")
    out.append(f"</Event><MaxEnvelopes>{msg.max_envelopes}</MaxEnvelopes>"
               f"<CurrentTime>{esc(_time(msg.current_time))}</CurrentTime>"
               f"<RetryCount>{msg.retry_count}</RetryCount>")
    _parameter_values(out, msg.parameters, ns)


def _inform_response(msg: m.InformResponse, out: list[str], ns: dict[str, str]) -> None:
    out.append(f"<MaxEnvelopes>{msg.max_envelopes}</MaxEnvelopes>")


def _transfer_complete(msg: m.TransferComplete, out: list[str], ns: dict[str, str]) -> None:
    out.append(f"<CommandKey>{esc(msg.command_key)}</CommandKey>")
    _transfer_fault(out, msg.fault)
    out.append(f"<StartTime>{esc(_time(msg.start_time))}</StartTime>"
               f"<CompleteTime>{esc(_time(msg.complete_time))}</CompleteTime>")


def _autonomous_transfer_complete(msg: m.AutonomousTransferComplete, out: list[str],
                                  ns: dict[str, str]) -> None:
    out.append(
        f"<AnnounceURL>{esc(msg.announce_url)}</AnnounceURL>"
        f"<TransferURL>{esc(msg.transfer_url)}</TransferURL>"
        f"<IsDownload>{_b(msg.is_download)}</IsDownload>"
        f"<FileType>{esc(msg.file_type)}</FileType><FileSize>{msg.file_size}</FileSize>"
        f"<TargetFileName>{esc(msg.target_file_name)}</TargetFileName>"
    )
    _transfer_fault(out, msg.fault)
    out.append(f"<StartTime>{esc(_time(msg.start_time))}</StartTime>"
               f"<CompleteTime>{esc(_time(msg.complete_time))}</CompleteTime>")


def _get_rpc_methods_response(msg: m.GetRPCMethodsResponse, out: list[str],
                              ns: dict[str, str]) -> None:
    _strings(out, "MethodList", msg.methods, "xsd:string")


def _request_download(msg: m.RequestDownload, out: list[str], ns: dict[str, str]) -> None:
    out.append(f"<FileType>{esc(msg.file_type)}</FileType>"
               f'<FileTypeArg soap-enc:arrayType="cwmp:ArgStruct[{len(msg.file_type_args)}]">')
    for arg in msg.file_type_args:
        out.append(f"<ArgStruct><Name>{esc(arg.name)}</Name>"
                   f"<Value>{esc(arg.value)}</Value></ArgStruct>")
    out.append("</FileTypeArg>")


def _kicked(msg: m.Kicked, out: list[str], ns: dict[str, str]) -> None:
    out.append(f"<Command>{esc(msg.command)}</Command><Referer>{esc(msg.referer)}</Referer>"
               f"<Arg>{esc(msg.arg)}</Arg><Next>{esc(msg.next)}</Next>")


def _kicked_response(msg: m.KickedResponse, out: list[str], ns: dict[str, str]) -> None:
    out.append(f"<NextURL>{esc(msg.next_url)}</NextURL>")


def _get_parameter_names(msg: m.GetParameterNames, out: list[str], ns: dict[str, str]) -> None:
    out.append(f"<ParameterPath>{esc(msg.path)}</ParameterPath>"
               f"<NextLevel>{_b(msg.next_level)}</NextLevel>")


def _get_parameter_names_response(msg: m.GetParameterNamesResponse, out: list[str],
                                  ns: dict[str, str]) -> None:
    out.append('<ParameterList soap-enc:arrayType='
               f'"cwmp:ParameterInfoStruct[{len(msg.parameters)}]">')
    for info in msg.parameters:
        out.append(f"<ParameterInfoStruct><Name>{esc(info.name)}</Name>"
                   f"<Writable>{_b(info.writable)}</Writable></ParameterInfoStruct>")
    out.append("</ParameterList>")


def _names(msg: m.GetParameterValues | m.GetParameterAttributes, out: list[str],
           ns: dict[str, str]) -> None:
    _strings(out, "ParameterNames", msg.names, "xsd:string")


def _values(msg: m.GetParameterValuesResponse, out: list[str], ns: dict[str, str]) -> None:
    _parameter_values(out, msg.parameters, ns)


def _set_parameter_values(msg: m.SetParameterValues, out: list[str], ns: dict[str, str]) -> None:
    _parameter_values(out, msg.parameters, ns)
    out.append(f"<ParameterKey>{esc(msg.parameter_key)}</ParameterKey>")


def _status(msg: Any, out: list[str], ns: dict[str, str]) -> None:
    out.append(f"<Status>{msg.status}</Status>")


def _get_parameter_attributes_response(msg: m.GetParameterAttributesResponse, out: list[str],
                                       ns: dict[str, str]) -> None:
    out.append('<ParameterList soap-enc:arrayType='
               f'"cwmp:ParameterAttributeStruct[{len(msg.parameters)}]">')
    for attr in msg.parameters:
        out.append(f"<ParameterAttributeStruct><Name>{esc(attr.name)}</Name>"
                   f"<Notification>{attr.notification}</Notification>")
        _access_list(out, attr.access_list)
        out.append("</ParameterAttributeStruct>")
    out.append("</ParameterList>")


def _set_parameter_attributes(msg: m.SetParameterAttributes, out: list[str],
                              ns: dict[str, str]) -> None:
    out.append('<ParameterList soap-enc:arrayType='
               f'"cwmp:SetParameterAttributesStruct[{len(msg.parameters)}]">')
    for item in msg.parameters:
        out.append(
            f"<SetParameterAttributesStruct><Name>{esc(item.name)}</Name>"
            f"<NotificationChange>{_b(item.notification_change)}</NotificationChange>"
            f"<Notification>{item.notification}</Notification>"
            f"<AccessListChange>{_b(item.access_list_change)}</AccessListChange>"
        )
        _access_list(out, item.access_list)
        out.append("</SetParameterAttributesStruct>")
    out.append("</ParameterList>")


def _object(msg: m.AddObject | m.DeleteObject, out: list[str], ns: dict[str, str]) -> None:
    out.append(f"<ObjectName>{esc(msg.object_name)}</ObjectName>"
               f"<ParameterKey>{esc(msg.parameter_key)}</ParameterKey>")


def _add_object_response(msg: m.AddObjectResponse, out: list[str], ns: dict[str, str]) -> None:
    out.append(f"<InstanceNumber>{msg.instance_number}</InstanceNumber>"
               f"<Status>{msg.status}</Status>")


def _command_key(msg: m.Reboot, out: list[str], ns: dict[str, str]) -> None:
    out.append(f"<CommandKey>{esc(msg.command_key)}</CommandKey>")


def _download(msg: m.Download, out: list[str], ns: dict[str, str]) -> None:
    out.append(
        f"<CommandKey>{esc(msg.command_key)}</CommandKey><FileType>{esc(msg.file_type)}</FileType>"
        f"<URL>{esc(msg.url)}</URL><Username>{esc(msg.username)}</Username>"
        f"<Password>{esc(msg.password)}</Password><FileSize>{msg.file_size}</FileSize>"
        f"<TargetFileName>{esc(msg.target_file_name)}</TargetFileName>"
        f"<DelaySeconds>{msg.delay_seconds}</DelaySeconds>"
        f"<SuccessURL>{esc(msg.success_url)}</SuccessURL>"
        f"<FailureURL>{esc(msg.failure_url)}</FailureURL>"
    )


def _transfer_response(msg: m.DownloadResponse | m.UploadResponse, out: list[str],
                       ns: dict[str, str]) -> None:
    out.append(f"<Status>{msg.status}</Status>"
               f"<StartTime>{esc(_time(msg.start_time))}</StartTime>"
               f"<CompleteTime>{esc(_time(msg.complete_time))}</CompleteTime>")


def _upload(msg: m.Upload, out: list[str], ns: dict[str, str]) -> None:
    out.append(
        f"<CommandKey>{esc(msg.command_key)}</CommandKey><FileType>{esc(msg.file_type)}</FileType>"
        f"<URL>{esc(msg.url)}</URL><Username>{esc(msg.username)}</Username>"
        f"<Password>{esc(msg.password)}</Password>"
        f"<DelaySeconds>{msg.delay_seconds}</DelaySeconds>"
    )


def _schedule_inform(msg: m.ScheduleInform, out: list[str], ns: dict[str, str]) -> None:
    out.append(f"<DelaySeconds>{msg.delay_seconds}</DelaySeconds>"
               f"<CommandKey>{esc(msg.command_key)}</CommandKey>")


def _empty(msg: Any, out: list[str], ns: dict[str, str]) -> None:
    return None


_Encoder = Callable[[Any, list[str], dict[str, str]], None]

_ENCODERS: dict[type[m.Message], _Encoder] = {
    m.Inform: _inform,
    m.InformResponse: _inform_response,
    m.TransferComplete: _transfer_complete,
    m.TransferCompleteResponse: _empty,
    m.AutonomousTransferComplete: _autonomous_transfer_complete,
    m.AutonomousTransferCompleteResponse: _empty,
    m.GetRPCMethods: _empty,
    m.GetRPCMethodsResponse: _get_rpc_methods_response,
    m.RequestDownload: _request_download,
    m.RequestDownloadResponse: _empty,
    m.Kicked: _kicked,
    m.KickedResponse: _kicked_response,
    m.GetParameterNames: _get_parameter_names,
    m.GetParameterNamesResponse: _get_parameter_names_response,
    m.GetParameterValues: _names,
    m.GetParameterValuesResponse: _values,
    m.SetParameterValues: _set_parameter_values,
    m.SetParameterValuesResponse: _status,
    m.GetParameterAttributes: _names,
    m.GetParameterAttributesResponse: _get_parameter_attributes_response,
    m.SetParameterAttributes: _set_parameter_attributes,
    m.SetParameterAttributesResponse: _empty,
    m.AddObject: _object,
    m.AddObjectResponse: _add_object_response,
    m.DeleteObject: _object,
    m.DeleteObjectResponse: _status,
    m.Reboot: _command_key,
    m.RebootResponse: _empty,
    m.FactoryReset: _empty,
    m.FactoryResetResponse: _empty,
    m.Download: _download,
    m.DownloadResponse: _transfer_response,
    m.Upload: _upload,
    m.UploadResponse: _transfer_response,
    m.ScheduleInform: _schedule_inform,
    m.ScheduleInformResponse: _empty,
}


def _fault(msg: m.Fault, out: list[str]) -> None:
    # TR-069 3.5 / A.5: a SOAP Fault with faultstring "CWMP fault" whose detail is cwmp:Fault.
    out.append(
        f"<soap-env:Fault><faultcode>{soap_fault_code(msg.code)}</faultcode>"
        f"<faultstring>CWMP fault</faultstring><detail><cwmp:Fault>"
        f"<FaultCode>{msg.code}</FaultCode><FaultString>{esc(msg.string)}</FaultString>"
    )
    for item in msg.set_parameter_values_faults:
        out.append(f"<SetParameterValuesFault><ParameterName>{esc(item.name)}</ParameterName>"
                   f"<FaultCode>{item.code}</FaultCode>"
                   f"<FaultString>{esc(item.string)}</FaultString></SetParameterValuesFault>")
    out.append("</cwmp:Fault></detail></soap-env:Fault>")


def encode_body(message: m.Message, out: list[str], std_ns: dict[str, str]) -> None:
    """Append the XML text of ``message``'s Body element to ``out``.

    ``std_ns`` maps the prefixes the envelope declares to their namespaces.

    Raises:
        MessageValidationError: for a message that cannot be sent (an UnknownMessage or
        something that is not a message).
    """
    if type(message) is m.Fault:
        _fault(message, out)
        return
    encoder = _ENCODERS.get(type(message))
    if encoder is None:
        raise MessageValidationError(f"cannot build a {type(message).__name__}: not a CWMP RPC")
    name = message.rpc_name
    start = len(out)
    out.append(f"<cwmp:{name}>")
    encoder(message, out, std_ns)
    if len(out) == start + 1:
        out[start] = f"<cwmp:{name}/>"
    else:
        out.append(f"</cwmp:{name}>")
