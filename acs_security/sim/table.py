"""What a simulated phone's data model holds: one immutable table per (model, firmware).

Every phone of a model and firmware shares one :class:`ModelTable` (its parameters, their
types, defaults, writability and the object tree for GetParameterNames); a phone keeps only
the values that differ from it. The table is the catalogue's view of that model and
firmware (``acs_security.mapping``: per-model extension count, settings the model lacks,
settings the firmware predates or replaced) plus the standard TR-181 parameters every CWMP
device reports (``Device.DeviceInfo.*`` and the rest of ``Device.ManagementServer.*``).

Pure: no I/O beyond the catalogue's data files, read once.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from acs_security.mapping import Catalogue
from acs_security.mapping.paths import parse_firmware

__all__ = [
    "CISCO_OUI",
    "DEFAULT_FIRMWARE",
    "DEFAULT_MODELS",
    "MANUFACTURER",
    "OLD_FIRMWARE",
    "ModelTable",
    "ModelTables",
    "ParamInfo",
    "REBOOT_SETTINGS",
    "software_version",
]

#: IEEE OUI 00-00-0C, Cisco Systems' first registration (DeviceIdStruct wants 6 hex digits).
CISCO_OUI = "00000C"
MANUFACTURER = "Cisco Systems, Inc."
#: The issue's example fleet: one model of each desk family and a conference phone.
DEFAULT_MODELS: tuple[str, ...] = ("CP-8851-3PCC", "CP-7841-3PCC", "CP-6821-3PCC", "CP-7832-3PCC")
#: Firmware versions handed out by default: 11.3(7) is the seed-000 release (TLS_Min_Version),
#: 12.0(1) the release that splits it into TLS_Client/Server_Min_Version (datamodel/models.toml
#: [firmware]), so that a default fleet has phones on both sides of the split.
DEFAULT_FIRMWARE: tuple[str, ...] = ("11.3(7)", "12.0(1)")
#: What the ``old_firmware`` fault runs: before seed 000's settings existed.
OLD_FIRMWARE = "11.2(3)"
# Load-name prefix per family, as Cisco names MPP images (sip88xx.12-0-1MPP0001-...).
# Conference phones use their family's desk prefix: "sip7832.11-3-7" would be read by
# acs_security.mapping.paths.parse_firmware as version 7832.11.3 (see docs/simulator.md).
_FAMILY_PREFIX = {"6800": "sip68xx", "7800": "sip78xx", "8800": "sip88xx"}
_CONFERENCE_PREFIX = {"CP-7832-3PCC": "sip78xx", "CP-8832-3PCC": "sip88xx"}

#: Settings that the phone commits at once but applies only after a reboot, so a
#: SetParameterValues containing them answers Status 1 (TR-069 A.3.2.1) and the phone
#: reboots itself at the end of the session. Connect on Bootup: seed 001 ("takes effect
#: after a reboot", settings.toml note); FIPS Mode: seed 000 ("the phone needs a restart").
REBOOT_SETTINGS = frozenset({"Connect_on_Bootup", "Device.X_CISCO_SecuritySettings.FIPSMode"})

# Standard TR-181 parameters beyond the catalogue's settings:
# path -> (type, writable, default text). Defaults of identity parameters are filled per
# phone by the phone itself (see phone.py); unsignedInt limits are in _LIMITS.
_STANDARD: dict[str, tuple[str, bool, str]] = {
    "Device.RootDataModelVersion": ("string", False, "2.12"),
    "Device.DeviceInfo.Manufacturer": ("string", False, MANUFACTURER),
    "Device.DeviceInfo.ManufacturerOUI": ("string", False, CISCO_OUI),
    "Device.DeviceInfo.ModelName": ("string", False, ""),
    "Device.DeviceInfo.ProductClass": ("string", False, ""),
    "Device.DeviceInfo.SerialNumber": ("string", False, ""),
    "Device.DeviceInfo.HardwareVersion": ("string", False, "V01"),
    "Device.DeviceInfo.SoftwareVersion": ("string", False, ""),
    "Device.DeviceInfo.ProvisioningCode": ("string", True, ""),
    "Device.DeviceInfo.UpTime": ("unsignedInt", False, "0"),
    "Device.ManagementServer.UDPConnectionRequestAddress": ("string", False, ""),
    "Device.ManagementServer.STUNEnable": ("boolean", True, "false"),
    # TR-111 part 2 (TR-181 Device.ManagementServer.): the STUN client of a phone behind NAT.
    "Device.ManagementServer.STUNServerAddress": ("string", True, ""),
    "Device.ManagementServer.STUNServerPort": ("unsignedInt", True, "3478"),
    "Device.ManagementServer.STUNMinimumKeepAlivePeriod": ("unsignedInt", True, "30"),
    "Device.ManagementServer.STUNMaximumKeepAlivePeriod": ("int", True, "-1"),
    "Device.ManagementServer.NATDetected": ("boolean", False, "false"),
    # TR-069 Annex K (TR-181 Device.ManagementServer.): XMPP connection requests.
    "Device.ManagementServer.ConnReqJabberID": ("string", False, ""),
    "Device.ManagementServer.ConnReqAllowedJabberIDs": ("string", True, ""),
    "Device.ManagementServer.ConnReqXMPPConnection": ("string", True, ""),
    # TR-111's (TR-098's) hold-back of VALUE CHANGE for the UDP address; TR-181 2.17 has no
    # such parameter, the simulator keeps it to test that the ACS follows BINDING-CHANGE.
    # TR-069 3.2.1.1 session retry: m = 5 s, k = 2000 (TR-181 defaults and ranges).
    "Device.ManagementServer.CWMPRetryMinimumWaitInterval": ("unsignedInt", True, "5"),
    "Device.ManagementServer.CWMPRetryIntervalMultiplier": ("unsignedInt", True, "2000"),
}
#: Inclusive ranges of the standard unsignedInt parameters (TR-181 2.12).
STANDARD_LIMITS: dict[str, tuple[int, int]] = {
    "Device.DeviceInfo.UpTime": (0, 2**32 - 1),
    "Device.ManagementServer.CWMPRetryMinimumWaitInterval": (1, 65535),
    "Device.ManagementServer.CWMPRetryIntervalMultiplier": (1000, 65535),
}


@dataclass(frozen=True, slots=True)
class ParamInfo:
    """One parameter of a phone: its type, whether the ACS may set it, its factory value."""

    path: str
    xsi_type: str
    writable: bool
    default: str
    secret: bool = False
    #: Catalogue setting key, or None for a standard parameter outside the catalogue.
    setting_key: str | None = None
    #: True when the phone applies a new value only after a reboot (Status 1).
    reboot: bool = False


def software_version(product_class: str, family: str, firmware: str, build: int = 276) -> str:
    """The SoftwareVersion a phone of that model reports for ``firmware`` (``12.0(1)``):
    ``sip88xx.12-0-1MPP0001-276``. The catalogue parses it back to the same version.

    Raises:
        ValueError: ``firmware`` holds no major.minor(maintenance) version.
    """
    version = parse_firmware(firmware)
    if version is None:
        raise ValueError(f"firmware {firmware!r} is not a version like 12.0(1)")
    prefix = _CONFERENCE_PREFIX.get(product_class) or _FAMILY_PREFIX.get(family, "sip88xx")
    major, minor, maint = version
    return f"{prefix}.{major}-{minor}-{maint}MPP0001-{build}"


def _objects_of(paths: Iterable[str]) -> dict[str, list[str]]:
    """Object path -> immediate children (objects end with '.'), in first-seen order."""
    children: dict[str, dict[str, None]] = {"Device.": {}}
    for path in paths:
        parts = path.split(".")
        parent = parts[0] + "."
        for depth in range(1, len(parts)):
            last = depth == len(parts) - 1
            child = parent + parts[depth] + ("" if last else ".")
            children.setdefault(parent, {})[child] = None
            if not last:
                children.setdefault(child, {})
            parent = child
    return {obj: list(kids) for obj, kids in children.items()}


class ModelTable:
    """The parameters of one (product class, SoftwareVersion), shared by all such phones.

    Immutable after construction: phones read ``params`` and ``objects`` and never write.
    """

    __slots__ = ("product_class", "family", "software_version", "extension_count", "params",
                 "objects", "names", "verdicts", "cfg_only", "element_of")

    def __init__(self, catalogue: Catalogue, product_class: str, software_version: str) -> None:
        """Raises UnknownModelError for a product class the catalogue does not know."""
        info = catalogue.model(product_class)
        self.product_class = info.product_class
        self.family = info.family
        self.software_version = software_version
        self.extension_count = info.extension_count
        params: dict[str, ParamInfo] = {}
        for path, (xsi, writable, default) in _STANDARD.items():
            if path.startswith("Device.DeviceInfo.") or path == "Device.RootDataModelVersion":
                params[sys.intern(path)] = ParamInfo(path, xsi, writable, default)
        for spec in catalogue.parameters_for(info.product_class, software_version):
            path = sys.intern(spec.path)
            params[path] = ParamInfo(
                path, spec.xsi_type, spec.writable, spec.default, spec.secret, spec.setting_key,
                spec.setting_key in REBOOT_SETTINGS,
            )
        for path, (xsi, writable, default) in _STANDARD.items():
            if path not in params:
                params[sys.intern(path)] = ParamInfo(path, xsi, writable, default)
        self.params: Mapping[str, ParamInfo] = params
        self.names: tuple[str, ...] = tuple(params)
        # The cfg.xml element of each catalogue parameter, and the settings this model and
        # firmware take only from cfg.xml (an override's cfgxml_only): no TR-069 parameter,
        # kept by element with their cfg.xml value (sim/config_file.py).
        view = catalogue.view(info.product_class, software_version)
        element_of: dict[str, str] = {}
        cfg_only: dict[str, ParamInfo] = {}
        for setting in catalogue.settings:
            if setting.element is None or view.missing_reason(setting) is not None:
                continue
            numbers = range(1, self.extension_count + 1) if setting.per_extension else (None,)
            for n in numbers:
                element = setting.element_for(n)
                assert element is not None
                if view.exposes(setting):
                    element_of[view.path_of(setting, n)] = element
                elif setting.writable:
                    cfg_only[element] = ParamInfo(element, setting.tr069_type, True, setting.default,
                                                  setting.secret, setting.key, setting.key in REBOOT_SETTINGS)
        self.element_of: Mapping[str, str] = element_of
        self.cfg_only: Mapping[str, ParamInfo] = cfg_only
        #: The one mutable part: a memo of the data model's verdicts on SetParameterValues
        #: values, (path, value text, xsi type) -> fault or None (sim/rpc.check_set). A
        #: fleet push sends every phone of a model the same values, and validating a cipher
        #: list through OpenSSL was a tenth of the simulator's CPU (py-spy, bench/ figure 3).
        self.verdicts: dict[tuple[str, str, str], tuple[int, str] | None] = {}
        self.objects: Mapping[str, tuple[str, ...]] = {
            sys.intern(obj): tuple(sys.intern(k) for k in kids)
            for obj, kids in _objects_of(self.names).items()
        }

    def __repr__(self) -> str:
        return (f"ModelTable({self.product_class!r}, {self.software_version!r}, "
                f"{len(self.params)} parameters)")

    def descendants(self, obj: str) -> list[str]:
        """Every object and parameter below ``obj`` (depth first, ``obj`` not included)."""
        out: list[str] = []
        stack = list(reversed(self.objects.get(obj, ())))
        while stack:
            name = stack.pop()
            out.append(name)
            if name.endswith("."):
                stack.extend(reversed(self.objects.get(name, ())))
        return out

    def parameters_under(self, prefix: str) -> list[str]:
        """The parameter names (not objects) below the object ``prefix``."""
        return [name for name in self.descendants(prefix) if not name.endswith(".")]


class ModelTables:
    """A cache of :class:`ModelTable` per (product class, SoftwareVersion), one per fleet."""

    __slots__ = ("catalogue", "_tables")

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self._tables: dict[tuple[str, str], ModelTable] = {}

    def get(self, product_class: str, firmware: str) -> ModelTable:
        """The table of ``product_class`` running ``firmware`` (``12.0(1)``).

        Raises:
            UnknownModelError: the catalogue does not know the product class.
            ValueError: ``firmware`` is not a version.
        """
        family = self.catalogue.model(product_class).family
        canonical = self.catalogue.model(product_class).product_class
        version = software_version(canonical, family, firmware)
        key = (canonical, version)
        table = self._tables.get(key)
        if table is None:
            table = ModelTable(self.catalogue, canonical, version)
            self._tables[key] = table
        return table

    def __len__(self) -> int:
        return len(self._tables)
