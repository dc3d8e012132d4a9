"""How a simulated phone answers each ACS request (TR-069 A.3.2), pure.

:func:`answer` takes the phone and one ACS request and returns the response message or a
:class:`~acs_security.cwmp.messages.Fault`; it changes the phone's values as the phone
would and queues what must happen after the session (reboot, factory reset, download).

SetParameterValues is judged like the phone does it: all or nothing (TR-069 A.3.2.1); every
bad parameter is listed in the fault with 9005 (no such name on this model and firmware),
9006 (wrong xsi:type), 9007 (a value the phone refuses, by the catalogue's own validators,
``acs_security.mapping.validate_tr069``) or 9008 (read-only); the ParameterKey changes only
on success; Status is 1 when a setting applies after a reboot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from acs_security.cwmp import messages as m
from acs_security.cwmp.values import KNOWN_TYPES, format_value
from acs_security.mapping import validate_tr069
from acs_security.mapping.convert import strip_xsi_prefix
from acs_security.sim.config_file import install_config
from acs_security.sim.faults import FaultKind
from acs_security.sim.phone import PARAMETER_KEY, Phone, canonical_text, typed_value
from acs_security.sim.table import STANDARD_LIMITS, ParamInfo

__all__ = ["FIRMWARE_IMAGE", "RPC_METHODS", "answer", "apply_downloaded_file", "check_set", "install_file"]

#: GetRPCMethodsResponse: the RPCs TR-069 requires of a CPE (A.3.2, Table 5).
RPC_METHODS: tuple[str, ...] = (
    "GetRPCMethods", "SetParameterValues", "GetParameterValues", "GetParameterNames",
    "SetParameterAttributes", "GetParameterAttributes", "AddObject", "DeleteObject",
    "Reboot", "Download", "Upload", "FactoryReset",
)
FIRMWARE_IMAGE = "1 Firmware Upgrade Image"
CONFIG_FILE = "3 Vendor Configuration File"
#: Upload FileType of the phone's configuration (TR-069 A.3.2.9).
UPLOAD_CONFIG_FILE = "1 Vendor Configuration File"
_FILE_TYPES = frozenset({FIRMWARE_IMAGE, CONFIG_FILE})
# Notification cannot be changed on these (TR-181: forced active notification, or a
# counter for which active notification is denied).
_FORCED_ACTIVE = frozenset({"Device.ManagementServer.ConnectionRequestURL",
                            "Device.ManagementServer.UDPConnectionRequestAddress"})
_ACTIVE_DENIED = frozenset({"Device.DeviceInfo.UpTime"})
_REJECTED_PREFIX = "Device.X_CISCO_SecuritySettings."


def _fault(code: int, string: str = "") -> m.Fault:
    return m.Fault(code, string[:256])


def answer(phone: Phone, request: m.Message, now: float) -> m.Message:
    """The phone's answer to one ACS request: a response message or a Fault (9000 for a
    method the phone does not implement)."""
    handler = _HANDLERS.get(type(request))
    if handler is None:
        name = getattr(request, "name", None) or type(request).__name__
        return _fault(9000, f"{name} is not supported")
    return handler(phone, request, now)


def _get_rpc_methods(phone: Phone, request: Any, now: float) -> m.Message:
    return m.GetRPCMethodsResponse(RPC_METHODS)


# ---------------------------------------------------------------------- names and values

def _expand(phone: Phone, name: str) -> list[str] | None:
    """Parameter names a GetParameterValues/Attributes name covers, None when unknown."""
    table = phone.table
    if name == "":
        return table.parameters_under("Device.")
    if name.endswith("."):
        return table.parameters_under(name) if name in table.objects else None
    return [name] if name in table.params else None


def _get_parameter_names(phone: Phone, request: m.GetParameterNames, now: float) -> m.Message:
    table = phone.table
    path = request.path
    if path == "":
        # TR-069 A.3.2.3: the empty path is the top of the hierarchy.
        names = ["Device."] if request.next_level else ["Device.", *table.descendants("Device.")]
    elif path.endswith("."):
        if path not in table.objects:
            return _fault(9005, f"{path}: no such object")
        names = list(table.objects[path]) if request.next_level \
            else [path, *table.descendants(path)]
    elif path in table.params:
        if request.next_level:
            return _fault(9003, f"{path} is a parameter: NextLevel must be false")
        names = [path]
    else:
        return _fault(9005, f"{path}: no such parameter")
    infos = []
    for name in names:
        info = table.params.get(name)
        # Objects: no multi-instance object of the phone accepts AddObject/DeleteObject.
        infos.append(m.ParameterInfo(name, bool(info and info.writable)))
    return m.GetParameterNamesResponse(tuple(infos))


def _get_parameter_values(phone: Phone, request: m.GetParameterValues, now: float) -> m.Message:
    out: list[m.ParameterValue] = []
    for name in request.names:
        names = _expand(phone, name)
        if names is None:
            return _fault(9005, f"{name}: no such parameter")
        for path in names:
            out.append(typed_value(phone.table.params[path], phone.value(path)))
    return m.GetParameterValuesResponse(tuple(out))


def _text_of(param: m.ParameterValue) -> str:
    if param.type in KNOWN_TYPES:
        return format_value(param.type, param.value)
    return str(param.value)


_MAX_VERDICTS = 4096


def check_set(phone: Phone, param: m.ParameterValue) -> tuple[int, str] | None:
    """The fault (code, string) the phone answers for one parameter of a
    SetParameterValues, or None when it accepts it."""
    name = param.name
    info = phone.table.params.get(name)
    if info is None:
        return 9005, f"{name}: no such parameter on this phone"
    if phone.faults & FaultKind.REJECT and name.startswith(_REJECTED_PREFIX):
        return 9007, f"{name}: value refused by this firmware"
    text = _text_of(param)
    if info.setting_key is None:
        return _check_standard(info, param, text)
    # The verdict depends only on the model, firmware, path, value and type: memoised per
    # model table (sim/table.py), at most _MAX_VERDICTS of them.
    key = (name, text, param.type)
    verdicts = phone.table.verdicts
    if key in verdicts:
        return verdicts[key]
    found = validate_tr069(name, text, param.type, product_class=phone.table.product_class,
                           software_version=phone.table.software_version,
                           catalogue=phone.env.catalogue)
    verdict = None if found is None else (found.code, found.message[:256])
    if len(verdicts) < _MAX_VERDICTS:
        verdicts[key] = verdict
    return verdict


def _check_standard(info: ParamInfo, param: m.ParameterValue, text: str) -> tuple[int, str] | None:
    if not info.writable:
        return 9008, f"{info.path} is not writable"
    if strip_xsi_prefix(param.type) != info.xsi_type:
        return 9006, f"{info.path} is xsd:{info.xsi_type}, not {param.type}"
    limits = STANDARD_LIMITS.get(info.path)
    if limits is not None:
        number = int(param.value)  # type: ignore[arg-type]
        if not limits[0] <= number <= limits[1]:
            return 9007, f"{info.path}: {number} is outside {limits[0]}-{limits[1]}"
    return None


def _set_parameter_values(phone: Phone, request: m.SetParameterValues, now: float) -> m.Message:
    # Counted on receipt, faulted or not: the ACS's retries of one change show up here.
    phone.spv_by_key[request.parameter_key] += 1
    faults: list[m.SetParameterValuesFault] = []
    updates: dict[str, str] = {}
    reboot = False
    for param in request.parameters:
        problem = check_set(phone, param)
        if problem is not None:
            faults.append(m.SetParameterValuesFault(param.name, problem[0], problem[1]))
            continue
        info = phone.table.params[param.name]
        updates[param.name] = canonical_text(info.xsi_type, _text_of(param))
        reboot = reboot or info.reboot
    if faults:
        # TR-069 A.3.2.1: nothing is applied; the fault lists every refused parameter.
        return m.Fault(9003, "Invalid arguments", tuple(faults))
    old_url = phone.acs_url
    updates[PARAMETER_KEY] = request.parameter_key
    phone.store(updates)
    if phone.acs_url != old_url:
        # A new ACS URL means bootstrapping with that ACS (TR-069 Table 7, 0 BOOTSTRAP).
        phone.add_event("0 BOOTSTRAP")
    if reboot:
        # The phone applies such settings at boot and restarts itself after the session.
        phone.queue_action("reboot", None)
    if phone.env.listener is not None:
        phone.env.listener.phone_changed(phone, tuple(updates), True)
    return m.SetParameterValuesResponse(1 if reboot else 0)


# ---------------------------------------------------------------------- attributes

def _get_parameter_attributes(phone: Phone, request: m.GetParameterAttributes,
                              now: float) -> m.Message:
    out = []
    for name in request.names:
        names = _expand(phone, name)
        if names is None:
            return _fault(9005, f"{name}: no such parameter")
        for path in names:
            out.append(m.ParameterAttribute(path, phone.notification(path),
                                            phone.access_list(path)))
    return m.GetParameterAttributesResponse(tuple(out))


def _set_parameter_attributes(phone: Phone, request: m.SetParameterAttributes,
                              now: float) -> m.Message:
    plan: list[tuple[str, int | None, tuple[str, ...] | None]] = []
    for struct in request.parameters:
        names = _expand(phone, struct.name)
        if names is None:
            return _fault(9005, f"{struct.name}: no such parameter")
        for path in names:
            notification = struct.notification if struct.notification_change else None
            if notification is not None:
                if path in _FORCED_ACTIVE and notification != 2:
                    return _fault(9009, f"{path} has forced active notification")
                if path in _ACTIVE_DENIED and notification == 2:
                    return _fault(9009, f"active notification denied for {path}")
            plan.append((path, notification,
                         struct.access_list if struct.access_list_change else None))
    for path, notification, access in plan:  # all or nothing, like SetParameterValues
        phone.set_attribute(path, notification, access)
    return m.SetParameterAttributesResponse()


# ---------------------------------------------------------------------- objects

def _add_object(phone: Phone, request: m.AddObject, now: float) -> m.Message:
    return _object_fault(phone, request.object_name)


def _delete_object(phone: Phone, request: m.DeleteObject, now: float) -> m.Message:
    return _object_fault(phone, request.object_name)


def _object_fault(phone: Phone, name: str) -> m.Message:
    # The phone's data model has fixed instances only (Device.X_CISCO_Ext.{n} is one per
    # line key): nothing can be added or deleted, and the ParameterKey stays unchanged.
    if name in phone.table.objects:
        return _fault(9005, f"{name} is not a multi-instance object")
    return _fault(9005, f"{name}: no such object")


# ---------------------------------------------------------------------- device actions

def _reboot(phone: Phone, request: m.Reboot, now: float) -> m.Message:
    phone.queue_action("reboot", request.command_key)
    return m.RebootResponse()


def _factory_reset(phone: Phone, request: m.FactoryReset, now: float) -> m.Message:
    phone.queue_action("factory_reset", None)
    return m.FactoryResetResponse()


def _download(phone: Phone, request: m.Download, now: float) -> m.Message:
    scheme = request.url.partition("://")[0].lower()
    if scheme not in ("http", "https"):
        return _fault(9013, f"{scheme or 'no'} scheme: only http and https downloads")
    if request.file_type not in _FILE_TYPES:
        return _fault(9003, f"FileType {request.file_type!r} is not supported")
    # Status 1: the transfer runs after the session; TransferComplete reports it.
    phone.queue_action("download", request)
    return m.DownloadResponse(1)


def install_file(phone: Phone, file_type: str, body: bytes) -> tuple[int, str, bool]:
    """Install a downloaded file: (0, "", reboots) on success, else (the TransferComplete
    fault, why, False).

    A vendor configuration file is a cfg.xml (the phones' flat profile), installed by the
    phone's own rules, all or nothing (sim/config_file.py); one the phone cannot read or use
    is 9018 "file corrupted or otherwise unusable". A firmware image is accepted when not
    empty (the simulator keeps its SoftwareVersion) and reboots the phone.
    """
    if not body:
        return 9018, "empty file", False
    if file_type != CONFIG_FILE:
        return 0, "", True
    return install_config(phone, body)


def apply_downloaded_file(phone: Phone, file_type: str, body: bytes) -> tuple[int, str]:
    """:func:`install_file` without the reboot flag."""
    code, text, _ = install_file(phone, file_type, body)
    return code, text


def _upload(phone: Phone, request: m.Upload, now: float) -> m.Message:
    scheme = request.url.partition("://")[0].lower()
    if scheme not in ("http", "https"):
        return _fault(9013, f"{scheme or 'no'} scheme: only http and https uploads")
    if request.file_type != UPLOAD_CONFIG_FILE:
        return _fault(9003, f"FileType {request.file_type!r} is not supported")
    # Status 1: the transfer runs after the session; TransferComplete reports it.
    phone.queue_action("upload", request)
    return m.UploadResponse(1)


_HANDLERS: dict[type, Callable[[Phone, Any, float], m.Message]] = {
    m.GetRPCMethods: _get_rpc_methods,
    m.GetParameterNames: _get_parameter_names,
    m.GetParameterValues: _get_parameter_values,
    m.SetParameterValues: _set_parameter_values,
    m.GetParameterAttributes: _get_parameter_attributes,
    m.SetParameterAttributes: _set_parameter_attributes,
    m.AddObject: _add_object,
    m.DeleteObject: _delete_object,
    m.Reboot: _reboot,
    m.FactoryReset: _factory_reset,
    m.Download: _download,
    m.Upload: _upload,
}
