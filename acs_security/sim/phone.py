"""One simulated Cisco phone: identity, parameter values, pending events, lockouts. Pure.

Memory matters (10 000 phones per process, < 40 KB each when idle): a phone holds a
reference to its model's shared :class:`~acs_security.sim.table.ModelTable` and to the
fleet's :class:`PhoneEnvironment`, and only the values that differ from both, in a dict
created on the first write (copy-on-write). Values that every phone has but that differ per
phone (serial number, connection-request URL and credentials, ACS URL ...) are computed from
the identity and the environment instead of stored.

How the phone answers each ACS request is in :mod:`acs_security.sim.rpc`; how a session
runs in :mod:`acs_security.sim.cpe_session`; scheduling and sockets in
:mod:`acs_security.sim.fleet`. The fleet's scheduling fields live here too (one object per
phone keeps the footprint small) but only the fleet touches them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from acs_security.cwmp import messages as m
from acs_security.mapping import Catalogue
from acs_security.sim.lockout import policy_lockout_reason
from acs_security.sim.table import ModelTable, ParamInfo

__all__ = [
    "PARAMETER_KEY",
    "Phone",
    "PhoneEnvironment",
    "PhoneListener",
    "UnknownParameterError",
    "canonical_text",
]

PARAMETER_KEY = "Device.ManagementServer.ParameterKey"
MS = "Device.ManagementServer."
# TR-069 A.3.3.1 / TR-181: parameters every Inform carries (forced inform).
_FORCED_INFORM: tuple[str, ...] = (
    "Device.RootDataModelVersion",
    "Device.DeviceInfo.HardwareVersion",
    "Device.DeviceInfo.SoftwareVersion",
    "Device.DeviceInfo.ProvisioningCode",
    PARAMETER_KEY,
    MS + "ConnectionRequestURL",
)
_UDP_ADDRESS = MS + "UDPConnectionRequestAddress"
#: At most this many events in one Inform (cwmp-1-2.xsd EventList maxOccurs 64).
MAX_EVENTS = 64


class UnknownParameterError(KeyError):
    """The phone has no parameter of that name (what the ACS would get as fault 9005)."""

    def __str__(self) -> str:
        return f"no parameter {self.args[0]!r} on this phone"


class PhoneListener(Protocol):
    """What the fleet wants to hear from a phone (the phone itself schedules nothing)."""

    def phone_changed(self, phone: Phone, paths: tuple[str, ...], by_acs: bool) -> None: ...


class PhoneEnvironment:
    """Settings shared by every phone of a fleet, which the phones report as their own
    values until the ACS changes them (a factory reset returns to these).

    Mutable on purpose: the fleet learns its listening ports only after ``start()``.
    ``now()`` is the fleet's clock (reactor time), used for UpTime only.
    """

    __slots__ = ("catalogue", "now", "acs_url", "acs_username", "acs_password",
                 "periodic_interval", "cr_url_base", "udp_address", "cr_mode", "cr_username",
                 "cr_password", "cr_secret", "listener")

    def __init__(self, catalogue: Catalogue, now: Callable[[], float], *, acs_url: str,
                 acs_username: str = "", acs_password: str = "", periodic_interval: int = 300,
                 cr_mode: str = "per-phone", cr_username: str = "", cr_password: str = "",
                 cr_secret: bytes = b"", cr_url_base: str = "", udp_address: str = "") -> None:
        """Raises ValueError for a cr_mode other than per-phone or shared."""
        if cr_mode not in ("per-phone", "shared"):
            raise ValueError(f"cr_mode {cr_mode!r} is neither 'per-phone' nor 'shared'")
        self.catalogue = catalogue
        self.now = now
        self.acs_url = acs_url
        self.acs_username = acs_username
        self.acs_password = acs_password
        self.periodic_interval = periodic_interval
        self.cr_mode = cr_mode
        self.cr_username = cr_username
        self.cr_password = cr_password
        self.cr_secret = cr_secret
        self.cr_url_base = cr_url_base
        self.udp_address = udp_address
        self.listener: PhoneListener | None = None

    def __repr__(self) -> str:  # no password in it
        return f"PhoneEnvironment(acs_url={self.acs_url!r}, cr_mode={self.cr_mode!r})"

    def cr_credentials(self, serial: str) -> tuple[str, str]:
        """The factory ConnectionRequestUsername/Password of the phone ``serial``."""
        if self.cr_mode == "shared":
            return self.cr_username, self.cr_password
        # Per phone, deterministic from the fleet's secret (itself from the seed): the
        # username carries the serial so that UDP requests (un=...) route to the phone.
        password = hmac.new(self.cr_secret, serial.encode(), hashlib.sha256).hexdigest()[:20]
        return f"cr-{serial}", password


def canonical_text(xsi_type: str, text: str) -> str:
    """The phone's stored form of a value: booleans ``true``/``false`` (as the catalogue
    writes them, acs_security/mapping/convert.py), integers without sign or zeros."""
    if xsi_type == "boolean":
        lowered = text.strip().lower()
        if lowered in ("1", "true"):
            return "true"
        if lowered in ("0", "false"):
            return "false"
    elif xsi_type in ("unsignedInt", "int", "long", "unsignedLong"):
        try:
            return str(int(text.strip()))
        except ValueError:
            return text
    return text


def _dynamic() -> dict[str, Callable[[Phone], str]]:
    """Per-phone values computed from identity and environment, not stored."""
    def cr_url(p: Phone) -> str:
        base = p.env.cr_url_base
        return base + p.serial if base else ""

    def udp(p: Phone) -> str:
        return p.env.udp_address if p.env.cr_mode == "per-phone" else ""

    return {
        "Device.DeviceInfo.SerialNumber": lambda p: p.serial,
        "Device.DeviceInfo.ProductClass": lambda p: p.table.product_class,
        "Device.DeviceInfo.ModelName": lambda p: p.table.product_class.removesuffix("-3PCC"),
        "Device.DeviceInfo.SoftwareVersion": lambda p: p.table.software_version,
        "Device.DeviceInfo.UpTime": lambda p: str(max(0, int(p.env.now() - p.boot_time))),
        MS + "EnableCWMP": lambda p: "true",
        MS + "URL": lambda p: p.env.acs_url,
        MS + "Username": lambda p: p.env.acs_username,
        MS + "Password": lambda p: p.env.acs_password,
        MS + "ConnectionRequestUsername": lambda p: p.env.cr_credentials(p.serial)[0],
        MS + "ConnectionRequestPassword": lambda p: p.env.cr_credentials(p.serial)[1],
        MS + "PeriodicInformInterval": lambda p: str(p.env.periodic_interval),
        MS + "ConnectionRequestURL": cr_url,
        _UDP_ADDRESS: udp,
    }


_DYNAMIC = _dynamic()


class Phone:
    """A simulated phone. Read values with :attr:`params`; the fleet drives everything else."""

    __slots__ = (
        "serial", "table", "env", "faults", "boot_time", "_values", "_attrs", "_spv", "_installs",
        "_changed", "events", "transfers", "actions", "locked_out", "sessions_completed",
        "sessions_failed", "retry_count",
        # fleet bookkeeping (acs_security.sim.fleet), untouched by the pure code:
        "state", "wake_seq", "next_periodic", "retry_at", "last_cr", "udp_verifier",
    )

    def __init__(self, serial: str, table: ModelTable, env: PhoneEnvironment, *,
                 faults: int = 0, boot_time: float = 0.0) -> None:
        self.serial = serial
        self.table = table
        self.env = env
        self.faults = faults
        self.boot_time = boot_time
        self._values: dict[str, str] | None = None
        self._attrs: dict[str, tuple[int, tuple[str, ...]]] | None = None
        self._spv: Counter[str] | None = None
        self._installs: Counter[str] | None = None
        self._changed: set[str] | None = None
        # Undelivered Inform events as (EventCode, CommandKey), oldest first.
        self.events: list[tuple[str, str]] | None = None
        self.transfers: list[m.TransferComplete] | None = None
        # What the phone does once the current session is over: (kind, argument).
        self.actions: list[tuple[str, Any]] | None = None
        #: Why the phone no longer reaches its ACS, or None.
        self.locked_out: str | None = None
        self.sessions_completed = 0
        self.sessions_failed = 0
        self.retry_count = 0
        self.state = 0
        self.wake_seq = 0
        self.next_periodic = 0.0
        self.retry_at: float | None = None
        self.last_cr = float("-inf")
        self.udp_verifier: Any = None

    def __repr__(self) -> str:
        return (f"Phone({self.serial!r}, {self.table.product_class}, "
                f"{self.table.software_version}, locked_out={self.locked_out!r})")

    # ----------------------------------------------------------------------- values
    @property
    def product_class(self) -> str:
        return self.table.product_class

    @property
    def params(self) -> Mapping[str, str]:
        """Read-only view: path -> value text (booleans ``true``/``false``)."""
        return _ParamView(self)

    @property
    def spv_by_key(self) -> Counter[str]:
        """SetParameterValues received per ParameterKey, counted on receipt (faulted or not)."""
        if self._spv is None:
            self._spv = Counter()
        return self._spv

    @property
    def installs_by_key(self) -> Counter[str]:
        """Downloaded files installed per CommandKey (successfully, once each if the ACS
        never sends a transfer twice)."""
        if self._installs is None:
            self._installs = Counter()
        return self._installs

    def info(self, path: str) -> ParamInfo | None:
        return self.table.params.get(path)

    def value(self, path: str) -> str:
        """The current value text. Raises UnknownParameterError."""
        values = self._values
        if values is not None:
            found = values.get(path)
            if found is not None:
                return found
        dynamic = _DYNAMIC.get(path)
        if dynamic is not None and path in self.table.params:
            return dynamic(self)
        info = self.table.params.get(path)
        if info is None:
            raise UnknownParameterError(path)
        return info.default

    def cfg_value(self, element: str) -> str | None:
        """The cfg.xml value of a setting this phone takes only from cfg.xml, or None."""
        info = self.table.cfg_only.get(element)
        if info is None:
            return None
        values = self._values
        if values is not None and element in values:
            return values[element]
        return info.default

    def lookup(self, path: str) -> str | None:
        """The current value text, or None when the phone lacks the parameter."""
        try:
            return self.value(path)
        except UnknownParameterError:
            return None

    def store(self, updates: Mapping[str, str]) -> None:
        """Write values (already checked); the first write creates the phone's own dict."""
        if self._values is None:
            self._values = {}
        self._values.update(updates)

    def set_param(self, path: str, value: str) -> None:
        """Change a value locally, as a user on the phone's web page would (for tests).

        No validation beyond the name: tests put phones in states the ACS could not.
        A parameter with notification on is reported in the next Inform ("4 VALUE CHANGE"
        now for active notification, TR-069 A.3.2.4).

        Raises:
            UnknownParameterError: the phone has no such parameter.
        """
        info = self.table.params.get(path)
        if info is None:
            raise UnknownParameterError(path)
        self.store({path: canonical_text(info.xsi_type, value)})
        notification = self.notification(path)
        if notification:
            if self._changed is None:
                self._changed = set()
            self._changed.add(path)
            if notification == 2:
                self.add_event("4 VALUE CHANGE")
        if self.env.listener is not None:
            self.env.listener.phone_changed(self, (path,), False)

    @property
    def acs_url(self) -> str:
        return self.value(MS + "URL")

    def acs_credentials(self) -> tuple[str, str]:
        """Device.ManagementServer.Username/Password: what the phone answers the ACS's
        digest challenge with."""
        return self.value(MS + "Username"), self.value(MS + "Password")

    def cr_credentials(self) -> tuple[str, str]:
        """ConnectionRequestUsername/Password: what the phone demands of the ACS."""
        return (self.value(MS + "ConnectionRequestUsername"),
                self.value(MS + "ConnectionRequestPassword"))

    def periodic(self) -> tuple[bool, int]:
        """(PeriodicInformEnable, PeriodicInformInterval seconds)."""
        enabled = self.value(MS + "PeriodicInformEnable") == "true"
        try:
            interval = max(1, int(self.value(MS + "PeriodicInformInterval")))
        except ValueError:
            interval = 20
        return enabled, interval

    def retry_parameters(self) -> tuple[int, int]:
        """(CWMPRetryMinimumWaitInterval, CWMPRetryIntervalMultiplier): TR-069 3.2.1.1."""
        return (int(self.value(MS + "CWMPRetryMinimumWaitInterval")),
                int(self.value(MS + "CWMPRetryIntervalMultiplier")))

    def lockout_reason(self) -> str | None:
        """Why the phone will not contact its ACS now (FIPS, TR-069 off, restricted
        domains: acs_security.sim.lockout), or None."""
        return policy_lockout_reason(self.lookup, self.acs_url)

    # ----------------------------------------------------------------------- attributes
    def notification(self, path: str) -> int:
        if path in (MS + "ConnectionRequestURL", _UDP_ADDRESS):
            return 2  # forced active notification (TR-181 Device.ManagementServer)
        if self._attrs is not None and path in self._attrs:
            return self._attrs[path][0]
        return 0

    def access_list(self, path: str) -> tuple[str, ...]:
        if self._attrs is not None and path in self._attrs:
            return self._attrs[path][1]
        return ()

    def active_notification(self) -> list[str]:
        """Paths the ACS set to active notification (Notification=2), in order."""
        return sorted(p for p, (n, _) in (self._attrs or {}).items() if n == 2)

    def set_attribute(self, path: str, notification: int | None,
                      access_list: tuple[str, ...] | None) -> None:
        if self._attrs is None:
            self._attrs = {}
        old_n, old_a = self._attrs.get(path, (0, ()))
        self._attrs[path] = (old_n if notification is None else notification,
                             old_a if access_list is None else access_list)

    # ----------------------------------------------------------------------- events
    def add_event(self, code: str, command_key: str = "") -> None:
        """Queue an Inform event; single events (all but ``M ...``) are not repeated."""
        if self.events is None:
            self.events = []
        if code.startswith("M "):
            if (code, command_key) in self.events:
                return
        elif any(c == code for c, _ in self.events):
            return
        if len(self.events) < MAX_EVENTS:
            self.events.append((code, command_key))

    def has_events(self) -> bool:
        return bool(self.events)

    def inform_events(self) -> tuple[m.EventStruct, ...]:
        return tuple(m.EventStruct(code, key) for code, key in (self.events or ()))

    def inform_parameters(self) -> tuple[m.ParameterValue, ...]:
        """The Inform ParameterList: forced parameters and changed ones with notification."""
        names = list(_FORCED_INFORM)
        if self.lookup(_UDP_ADDRESS):
            names.append(_UDP_ADDRESS)
        if self.lookup(MS + "ConnReqJabberID"):
            names.append(MS + "ConnReqJabberID")  # Annex K: the ACS learns where to send the IQ
        if self.lookup(MS + "NATDetected") == "true":
            # Behind NAT (sim/nat.py): the ACS chooses UDP or XMPP over HTTP by these.
            names += [MS + "NATDetected", MS + "STUNMinimumKeepAlivePeriod"]
        for path in sorted(self._changed or ()):
            if path not in names:
                names.append(path)
        out = []
        for path in names:
            info = self.table.params.get(path)
            if info is not None:
                out.append(typed_value(info, self.value(path)))
        return tuple(out)

    def inform_delivered(self, sent: tuple[m.EventStruct, ...]) -> None:
        """The ACS answered the Inform: its events are delivered (TR-069 3.2.1.1: the
        session counts as successful and RetryCount resets)."""
        delivered = {(e.event_code, e.command_key) for e in sent}
        remaining = [e for e in (self.events or ()) if e not in delivered]
        self.events = remaining or None
        self._changed = None
        self.retry_count = 0

    def session_failed(self) -> None:
        """The session failed before the Inform was answered. "6 CONNECTION REQUEST" is
        discarded (TR-069 Table 7: not retried); the rest waits for the retry."""
        if self.events:
            self.events = [e for e in self.events if e[0] != "6 CONNECTION REQUEST"] or None
        if self.events or self.transfers:
            self.retry_count += 1

    def take_actions(self) -> list[tuple[str, Any]]:
        actions, self.actions = self.actions or [], None
        return actions

    def queue_action(self, kind: str, argument: Any = None) -> None:
        if self.actions is None:
            self.actions = []
        if (kind, argument) not in self.actions:
            self.actions.append((kind, argument))

    # ----------------------------------------------------------------------- lifecycle
    def reboot(self, now: float, command_key: str | None) -> None:
        """Restart: "1 BOOT", plus "M Reboot" with the CommandKey when the ACS asked."""
        self.boot_time = now
        self.add_event("1 BOOT")
        if command_key is not None:
            self.add_event("M Reboot", command_key)

    def factory_reset(self, now: float) -> None:
        """Back to factory values: ParameterKey empty, attributes gone, "0 BOOTSTRAP" and
        "1 BOOT" next (TR-069 Table 7)."""
        self._values = None
        self._attrs = None
        self._changed = None
        self.transfers = None
        self.events = None
        self.boot_time = now
        self.add_event("0 BOOTSTRAP")
        self.add_event("1 BOOT")

    def transfer_done(self, command_key: str, code: int, string: str, start: Any,
                      complete: Any, *, rebooted: bool, method: str = "Download") -> None:
        """A Download (or Upload) finished: report TransferComplete in a new session ("7
        TRANSFER COMPLETE" and "M Download" / "M Upload", TR-069 A.3.3.2 and Table 7); a
        firmware image, or a file with a setting that applies at boot, also reboots."""
        if self.transfers is None:
            self.transfers = []
        self.transfers.append(m.TransferComplete(
            command_key, m.TransferCompleteFault(code, string[:256]), start, complete))
        if rebooted:
            self.add_event("1 BOOT")
        self.add_event("7 TRANSFER COMPLETE")
        self.add_event(f"M {method}", command_key)

    def transfer_delivered(self) -> None:
        if self.transfers:
            self.transfers.pop(0)
        if not self.transfers:
            self.transfers = None


def typed_value(info: ParamInfo, text: str) -> m.ParameterValue:
    """A ParameterValue of the right type. Secrets read back empty (TR-181: "When read,
    this parameter returns an empty string, regardless of the actual value")."""
    if info.secret:
        return m.ParameterValue.unchecked(info.path, "", "string")
    kind = info.xsi_type
    if kind == "boolean":
        return m.ParameterValue.unchecked(info.path, text == "true", kind)
    if kind in ("unsignedInt", "int"):
        try:
            return m.ParameterValue.unchecked(info.path, int(text), kind)
        except ValueError:
            pass  # an empty default of a numeric setting: reported as it is
    return m.ParameterValue.unchecked(info.path, text, "string" if kind != "string" else kind)


class _ParamView(Mapping[str, str]):
    __slots__ = ("_phone",)

    def __init__(self, phone: Phone) -> None:
        self._phone = phone

    def __getitem__(self, path: str) -> str:
        return self._phone.value(path)

    def __iter__(self) -> Iterator[str]:
        return iter(self._phone.table.names)

    def __len__(self) -> int:
        return len(self._phone.table.names)

    def __contains__(self, path: object) -> bool:
        return path in self._phone.table.params
