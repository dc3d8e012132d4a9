"""The RPC element of a parsed SOAP Body -> a message dataclass.

Every problem is a :class:`CwmpProtocolError` with fault 8003 (Invalid arguments) that names the
element and what is wrong with it. Input is read leniently where the schema's strictness buys
nothing (child order, qualified children, a missing ``arrayType``, a Value without ``xsi:type``,
taken as ``string``) and strictly where a wrong value would be acted upon (missing fields, values
that do not match their type, schema limits).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from lxml import etree

from acs_security.cwmp import messages as m
from acs_security.cwmp.errors import CwmpProtocolError, MessageValidationError
from acs_security.cwmp.namespaces import SOAP_ENC, SOAP_ENV, XSD, XSI
from acs_security.cwmp.values import parse_value, safe_repr

__all__ = ["decode_body", "decode_fault_detail"]

_Element = etree._Element
_XSI_TYPE = f"{{{XSI}}}type"
# Prefixes that CPEs use for the XML Schema and SOAP encoding namespaces; trusted without a
# namespace lookup (the lookup costs more than the rest of the Value), which also accepts
# stacks that forget to declare them.
_STD_PREFIXES = frozenset({"xsd", "xs", "soap-enc", "soapenc", "SOAP-ENC", "enc"})
_ENVELOPE_NS = {"xsd": XSD, "xsi": XSI, "soap-enc": SOAP_ENC, "soap-env": SOAP_ENV}
_TYPE_BY_LOCAL = {
    "string": "string", "int": "int", "unsignedInt": "unsignedInt", "long": "long",
    "unsignedLong": "unsignedLong", "boolean": "boolean", "dateTime": "dateTime",
    "base64": "base64", "base64Binary": "base64", "hexBinary": "hexBinary",
}


# xsi:type spellings seen on the wire for the known types, for the fast path.
_FAST_XSI = {
    f"{prefix}:{local}": known
    for prefix in ("xsd", "xs") for local, known in _TYPE_BY_LOCAL.items()
}
_FAST_XSI.update({f"{prefix}:base64": "base64" for prefix in ("soap-enc", "soapenc", "SOAP-ENC")})


def _bad(where: str, what: str) -> CwmpProtocolError:
    return CwmpProtocolError(f"{where}: {what}", fault_code=8003)


def _local(tag: str) -> str:
    return tag[tag.index("}") + 1:] if tag[0] == "{" else tag


def _fields(el: _Element, where: str) -> dict[str, _Element]:
    fields: dict[str, _Element] = {}
    for child in el:
        tag = child.tag
        if type(tag) is not str:
            continue
        if tag[0] == "{":
            tag = tag[tag.index("}") + 1:]
        if tag in fields:
            raise _bad(where, f"<{tag}> appears twice")
        fields[tag] = child
    return fields


def _need(fields: dict[str, _Element], name: str, where: str) -> _Element:
    el = fields.get(name)
    if el is None:
        raise _bad(where, f"<{name}> is missing")
    return el


def _text(fields: dict[str, _Element], name: str, where: str) -> str:
    el = fields.get(name)
    if el is None:
        raise _bad(where, f"<{name}> is missing")
    return el.text or ""


def _typed(fields: dict[str, _Element], name: str, where: str, type_name: str) -> Any:
    text = _text(fields, name, where)
    try:
        return parse_value(type_name, text)
    except MessageValidationError as exc:
        raise _bad(f"{where}/{name}", f"{safe_repr(name, text)}: {exc}") from None


class _MessageClass(Protocol):
    """A message class as the generic decoders below use it: its element name, and its constructor."""

    rpc_name: str

    def __call__(self, *args: Any) -> m.Message: ...


def _make(cls: Callable[..., Any], where: str, *args: Any) -> Any:
    try:
        return cls(*args)
    except MessageValidationError as exc:
        raise _bad(where, str(exc)) from None


def _items(el: _Element, item: str, where: str) -> list[_Element]:
    items = []
    for child in el:
        tag = child.tag
        if type(tag) is not str:
            continue
        if (tag if tag[0] != "{" else _local(tag)) != item:
            raise _bad(where, f"holds <{_local(tag)}> where <{item}> is expected")
        items.append(child)
    return items


def _strings(el: _Element, where: str) -> tuple[str, ...]:
    return tuple(child.text or "" for child in _items(el, "string", where))


def _value_type(value_el: _Element, where: str) -> tuple[str, str | None]:
    xsi = value_el.get(_XSI_TYPE)
    if xsi is None:
        return "string", None
    prefix, _, local = xsi.rpartition(":")
    if not prefix:
        known = _TYPE_BY_LOCAL.get(local)
        return (known, None) if known else (xsi, None)
    if prefix in _STD_PREFIXES:
        known = _TYPE_BY_LOCAL.get(local)
        if known:
            return known, None
    ns = value_el.nsmap.get(prefix)
    if ns is None:
        if prefix in _STD_PREFIXES:
            return xsi, None
        raise _bad(where, f"xsi:type {xsi!r} uses an undeclared prefix")
    if ns in (XSD, SOAP_ENC) and local in _TYPE_BY_LOCAL:
        return _TYPE_BY_LOCAL[local], None
    if _ENVELOPE_NS.get(prefix) == ns:
        return xsi, None  # the envelope we build declares this prefix the same way
    return xsi, ns


def _parameter_values(el: _Element, where: str) -> tuple[m.ParameterValue, ...]:
    params: list[m.ParameterValue] = []
    append = params.append
    unchecked = m.ParameterValue.unchecked
    fast_xsi = _FAST_XSI.get
    xsi_type = _XSI_TYPE
    for struct in el:
        # Fast path: <ParameterValueStruct><Name/><Value xsi:type="xsd:..."/></...>, as every
        # CPE writes it; anything else (order, prefixes, other types) takes the general path.
        if len(struct) == 2 and struct.tag == "ParameterValueStruct":
            name_el, value_el = struct
            if name_el.tag == "Name" and value_el.tag == "Value":
                xsi = value_el.get(xsi_type)
                type_name = fast_xsi(xsi) if xsi is not None else "string"
                name = name_el.text or ""
                if type_name is not None and len(name) <= 256:
                    if type_name == "string":
                        append(unchecked(name, value_el.text or "", "string"))
                        continue
                    try:
                        append(unchecked(name, parse_value(type_name, value_el.text or ""), type_name))
                        continue
                    except MessageValidationError:
                        pass  # the general path reports it with its position
        append(_parameter_value(struct, len(params) + 1, where))
    return tuple(params)


def _parameter_value(struct: _Element, position: int, where: str) -> m.ParameterValue:
    here = f"{where}/ParameterValueStruct[{position}]"
    tag = struct.tag
    if type(tag) is not str or _local(tag) != "ParameterValueStruct":
        raise _bad(where, f"holds <{_local(str(tag))}> where <ParameterValueStruct> is expected")
    name_el = value_el = None
    for child in struct:
        tag = child.tag
        if type(tag) is not str:
            continue
        tag = _local(tag)
        if tag == "Name":
            name_el = child
        elif tag == "Value":
            value_el = child
    if name_el is None or value_el is None:
        raise _bad(here, "needs <Name> and <Value>")
    name = name_el.text or ""
    type_name, type_ns = _value_type(value_el, here)
    text = value_el.text or ""
    value: Any = text
    if type_ns is None and type_name in _TYPE_BY_LOCAL:
        try:
            value = parse_value(type_name, text)
        except MessageValidationError as exc:
            raise _bad(here, f"{name}: value {safe_repr(name, text)} is {exc}") from None
    try:
        return m.ParameterValue(name, value, type_name, type_ns)
    except MessageValidationError as exc:
        raise _bad(here, str(exc)) from None


def _transfer_fault(fields: dict[str, _Element], where: str) -> m.TransferCompleteFault:
    here = f"{where}/FaultStruct"
    fault = _fields(_need(fields, "FaultStruct", where), here)
    return _make(m.TransferCompleteFault, here, _typed(fault, "FaultCode", here, "unsignedInt"),
                 _text(fault, "FaultString", here))


def _inform(el: _Element) -> m.Inform:
    w = "Inform"
    f = _fields(el, w)
    dev = _fields(_need(f, "DeviceId", w), f"{w}/DeviceId")
    device_id = _make(m.DeviceId, f"{w}/DeviceId", _text(dev, "Manufacturer", w),
                      _text(dev, "OUI", w), _text(dev, "ProductClass", w),
                      _text(dev, "SerialNumber", w))
    events = []
    for event_el in _items(_need(f, "Event", w), "EventStruct", f"{w}/Event"):
        ev = _fields(event_el, f"{w}/Event/EventStruct")
        events.append(_make(m.EventStruct, f"{w}/Event", _text(ev, "EventCode", f"{w}/Event"),
                            _text(ev, "CommandKey", f"{w}/Event")))
    return _make(m.Inform, w, device_id, tuple(events),
                 _typed(f, "MaxEnvelopes", w, "unsignedInt"),
                 _typed(f, "CurrentTime", w, "dateTime"),
                 _typed(f, "RetryCount", w, "unsignedInt"),
                 _parameter_values(_need(f, "ParameterList", w), f"{w}/ParameterList"))


def _inform_response(el: _Element) -> m.InformResponse:
    f = _fields(el, "InformResponse")
    return _make(m.InformResponse, "InformResponse",
                 _typed(f, "MaxEnvelopes", "InformResponse", "unsignedInt"))


def _transfer_complete(el: _Element) -> m.TransferComplete:
    w = "TransferComplete"
    f = _fields(el, w)
    return _make(m.TransferComplete, w, _text(f, "CommandKey", w), _transfer_fault(f, w),
                 _typed(f, "StartTime", w, "dateTime"), _typed(f, "CompleteTime", w, "dateTime"))


def _autonomous_transfer_complete(el: _Element) -> m.AutonomousTransferComplete:
    w = "AutonomousTransferComplete"
    f = _fields(el, w)
    return _make(m.AutonomousTransferComplete, w, _text(f, "AnnounceURL", w),
                 _text(f, "TransferURL", w), _typed(f, "IsDownload", w, "boolean"),
                 _text(f, "FileType", w), _typed(f, "FileSize", w, "unsignedInt"),
                 _text(f, "TargetFileName", w), _transfer_fault(f, w),
                 _typed(f, "StartTime", w, "dateTime"), _typed(f, "CompleteTime", w, "dateTime"))


def _get_rpc_methods_response(el: _Element) -> m.GetRPCMethodsResponse:
    w = "GetRPCMethodsResponse"
    f = _fields(el, w)
    return _make(m.GetRPCMethodsResponse, w,
                 _strings(_need(f, "MethodList", w), f"{w}/MethodList"))


def _request_download(el: _Element) -> m.RequestDownload:
    w = "RequestDownload"
    f = _fields(el, w)
    args = []
    arg_list = f.get("FileTypeArg")  # lenient: a CPE with no arguments may leave it out
    if arg_list is not None:
        for arg_el in _items(arg_list, "ArgStruct", f"{w}/FileTypeArg"):
            a = _fields(arg_el, f"{w}/FileTypeArg/ArgStruct")
            args.append(_make(m.ArgStruct, f"{w}/FileTypeArg", _text(a, "Name", w),
                              _text(a, "Value", w)))
    return _make(m.RequestDownload, w, _text(f, "FileType", w), tuple(args))


def _kicked(el: _Element) -> m.Kicked:
    f = _fields(el, "Kicked")
    return _make(m.Kicked, "Kicked", _text(f, "Command", "Kicked"),
                 _text(f, "Referer", "Kicked"), _text(f, "Arg", "Kicked"),
                 _text(f, "Next", "Kicked"))


def _kicked_response(el: _Element) -> m.KickedResponse:
    f = _fields(el, "KickedResponse")
    return _make(m.KickedResponse, "KickedResponse", _text(f, "NextURL", "KickedResponse"))


def _get_parameter_names(el: _Element) -> m.GetParameterNames:
    w = "GetParameterNames"
    f = _fields(el, w)
    return _make(m.GetParameterNames, w, _text(f, "ParameterPath", w),
                 _typed(f, "NextLevel", w, "boolean"))


def _get_parameter_names_response(el: _Element) -> m.GetParameterNamesResponse:
    w = "GetParameterNamesResponse"
    f = _fields(el, w)
    infos = []
    for info_el in _items(_need(f, "ParameterList", w), "ParameterInfoStruct",
                          f"{w}/ParameterList"):
        i = _fields(info_el, f"{w}/ParameterInfoStruct")
        infos.append(_make(m.ParameterInfo, w, _text(i, "Name", w),
                           _typed(i, "Writable", f"{w}/ParameterInfoStruct", "boolean")))
    return m.GetParameterNamesResponse(tuple(infos))


def _names(cls: _MessageClass) -> Callable[[_Element], Any]:
    def decode(el: _Element) -> Any:
        w = cls.rpc_name
        f = _fields(el, w)
        return _make(cls, w, _strings(_need(f, "ParameterNames", w), f"{w}/ParameterNames"))
    return decode


def _parameter_list(cls: _MessageClass) -> Callable[[_Element], Any]:
    def decode(el: _Element) -> Any:
        w = cls.rpc_name
        f = _fields(el, w)
        return cls(_parameter_values(_need(f, "ParameterList", w), f"{w}/ParameterList"))
    return decode


def _set_parameter_values(el: _Element) -> m.SetParameterValues:
    w = "SetParameterValues"
    f = _fields(el, w)
    return _make(m.SetParameterValues, w,
                 _parameter_values(_need(f, "ParameterList", w), f"{w}/ParameterList"),
                 _text(f, "ParameterKey", w))


def _status(cls: _MessageClass) -> Callable[[_Element], Any]:
    def decode(el: _Element) -> Any:
        f = _fields(el, cls.rpc_name)
        return _make(cls, cls.rpc_name, _typed(f, "Status", cls.rpc_name, "int"))
    return decode


def _access_list(fields: dict[str, _Element], where: str) -> tuple[str, ...]:
    access = fields.get("AccessList")
    return () if access is None else _strings(access, f"{where}/AccessList")


def _get_parameter_attributes_response(el: _Element) -> m.GetParameterAttributesResponse:
    w = "GetParameterAttributesResponse"
    f = _fields(el, w)
    attrs = []
    for attr_el in _items(_need(f, "ParameterList", w), "ParameterAttributeStruct",
                          f"{w}/ParameterList"):
        here = f"{w}/ParameterAttributeStruct"
        a = _fields(attr_el, here)
        attrs.append(_make(m.ParameterAttribute, here, _text(a, "Name", here),
                           _typed(a, "Notification", here, "int"), _access_list(a, here)))
    return m.GetParameterAttributesResponse(tuple(attrs))


def _set_parameter_attributes(el: _Element) -> m.SetParameterAttributes:
    w = "SetParameterAttributes"
    f = _fields(el, w)
    items = []
    for item_el in _items(_need(f, "ParameterList", w), "SetParameterAttributesStruct",
                          f"{w}/ParameterList"):
        here = f"{w}/SetParameterAttributesStruct"
        s = _fields(item_el, here)
        items.append(_make(m.SetParameterAttributesStruct, here, _text(s, "Name", here),
                           _typed(s, "NotificationChange", here, "boolean"),
                           _typed(s, "Notification", here, "int"),
                           _typed(s, "AccessListChange", here, "boolean"),
                           _access_list(s, here)))
    return _make(m.SetParameterAttributes, w, tuple(items))


def _object(cls: _MessageClass) -> Callable[[_Element], Any]:
    def decode(el: _Element) -> Any:
        w = cls.rpc_name
        f = _fields(el, w)
        return _make(cls, w, _text(f, "ObjectName", w), _text(f, "ParameterKey", w))
    return decode


def _add_object_response(el: _Element) -> m.AddObjectResponse:
    w = "AddObjectResponse"
    f = _fields(el, w)
    return _make(m.AddObjectResponse, w, _typed(f, "InstanceNumber", w, "unsignedInt"),
                 _typed(f, "Status", w, "int"))


def _command_key(cls: _MessageClass) -> Callable[[_Element], Any]:
    def decode(el: _Element) -> Any:
        f = _fields(el, cls.rpc_name)
        return _make(cls, cls.rpc_name, _text(f, "CommandKey", cls.rpc_name))
    return decode


def _download(el: _Element) -> m.Download:
    w = "Download"
    f = _fields(el, w)
    return _make(m.Download, w, _text(f, "CommandKey", w), _text(f, "FileType", w),
                 _text(f, "URL", w), _text(f, "Username", w), _text(f, "Password", w),
                 _typed(f, "FileSize", w, "unsignedInt"), _text(f, "TargetFileName", w),
                 _typed(f, "DelaySeconds", w, "unsignedInt"), _text(f, "SuccessURL", w),
                 _text(f, "FailureURL", w))


def _transfer_response(cls: _MessageClass) -> Callable[[_Element], Any]:
    def decode(el: _Element) -> Any:
        w = cls.rpc_name
        f = _fields(el, w)
        return _make(cls, w, _typed(f, "Status", w, "int"), _typed(f, "StartTime", w, "dateTime"),
                     _typed(f, "CompleteTime", w, "dateTime"))
    return decode


def _upload(el: _Element) -> m.Upload:
    w = "Upload"
    f = _fields(el, w)
    return _make(m.Upload, w, _text(f, "CommandKey", w), _text(f, "FileType", w),
                 _text(f, "URL", w), _text(f, "Username", w), _text(f, "Password", w),
                 _typed(f, "DelaySeconds", w, "unsignedInt"))


def _schedule_inform(el: _Element) -> m.ScheduleInform:
    w = "ScheduleInform"
    f = _fields(el, w)
    return _make(m.ScheduleInform, w, _typed(f, "DelaySeconds", w, "unsignedInt"),
                 _text(f, "CommandKey", w))


def _empty(cls: type) -> Callable[[_Element], Any]:
    instance = cls()

    def decode(el: _Element) -> Any:
        return instance
    return decode


_DECODERS: dict[str, Callable[[_Element], m.Message]] = {
    "Inform": _inform,
    "InformResponse": _inform_response,
    "TransferComplete": _transfer_complete,
    "TransferCompleteResponse": _empty(m.TransferCompleteResponse),
    "AutonomousTransferComplete": _autonomous_transfer_complete,
    "AutonomousTransferCompleteResponse": _empty(m.AutonomousTransferCompleteResponse),
    "GetRPCMethods": _empty(m.GetRPCMethods),
    "GetRPCMethodsResponse": _get_rpc_methods_response,
    "RequestDownload": _request_download,
    "RequestDownloadResponse": _empty(m.RequestDownloadResponse),
    "Kicked": _kicked,
    "KickedResponse": _kicked_response,
    "GetParameterNames": _get_parameter_names,
    "GetParameterNamesResponse": _get_parameter_names_response,
    "GetParameterValues": _names(m.GetParameterValues),
    "GetParameterValuesResponse": _parameter_list(m.GetParameterValuesResponse),
    "SetParameterValues": _set_parameter_values,
    "SetParameterValuesResponse": _status(m.SetParameterValuesResponse),
    "GetParameterAttributes": _names(m.GetParameterAttributes),
    "GetParameterAttributesResponse": _get_parameter_attributes_response,
    "SetParameterAttributes": _set_parameter_attributes,
    "SetParameterAttributesResponse": _empty(m.SetParameterAttributesResponse),
    "AddObject": _object(m.AddObject),
    "AddObjectResponse": _add_object_response,
    "DeleteObject": _object(m.DeleteObject),
    "DeleteObjectResponse": _status(m.DeleteObjectResponse),
    "Reboot": _command_key(m.Reboot),
    "RebootResponse": _empty(m.RebootResponse),
    "FactoryReset": _empty(m.FactoryReset),
    "FactoryResetResponse": _empty(m.FactoryResetResponse),
    "Download": _download,
    "DownloadResponse": _transfer_response(m.DownloadResponse),
    "Upload": _upload,
    "UploadResponse": _transfer_response(m.UploadResponse),
    "ScheduleInform": _schedule_inform,
    "ScheduleInformResponse": _empty(m.ScheduleInformResponse),
}


def decode_body(local_name: str, el: _Element) -> m.Message:
    """Decode the RPC element ``el`` whose local name is ``local_name``; an RPC this codec
    does not know becomes :class:`~acs_security.cwmp.messages.UnknownMessage`.

    Raises:
        CwmpProtocolError: fault 8003, naming the element and the problem.
    """
    decoder = _DECODERS.get(local_name)
    if decoder is None:
        return _make(m.UnknownMessage, local_name, local_name)
    return decoder(el)


def decode_fault_detail(el: _Element) -> m.Fault:
    """Decode a ``cwmp:Fault`` detail element.

    Raises:
        CwmpProtocolError: fault 8003, naming the element and the problem.
    """
    w = "Fault"
    codes: dict[str, _Element] = {}
    spv_faults = []
    for child in el:
        tag = child.tag
        if type(tag) is not str:
            continue
        tag = _local(tag)
        if tag == "SetParameterValuesFault":
            here = f"{w}/SetParameterValuesFault"
            s = _fields(child, here)
            spv_faults.append(_make(m.SetParameterValuesFault, here,
                                    _text(s, "ParameterName", here),
                                    _typed(s, "FaultCode", here, "unsignedInt"),
                                    (s["FaultString"].text or "") if "FaultString" in s else ""))
        elif tag in codes:
            raise _bad(w, f"<{tag}> appears twice")
        else:
            codes[tag] = child
    string_el = codes.get("FaultString")
    return _make(m.Fault, w, _typed(codes, "FaultCode", w, "unsignedInt"),
                 "" if string_el is None else (string_el.text or ""), tuple(spv_faults))
