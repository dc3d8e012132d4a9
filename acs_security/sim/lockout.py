"""How a phone's own security settings cut it off from its ACS, as pure predicates.

These are the lockouts the product must prevent, so the simulator makes them happen:

* FIPS Mode = Yes disables TR-069 (seed 000, "Enable FIPS Mode": "TR069 is Disabled").
* Enable TR-069 = No: the phone's CWMP client is off.
* Restricted Access Domains that do not cover the ACS host: the phone only talks to the
  servers listed (seed 000 / 001, "Configure Restricted Access Domains"); an empty list is no
  restriction. A domain covers the host when equal to it or a parent domain of it, the same
  test as the catalogue's ``contains_host_of`` rule (acs_security/mapping/rules.py).
* TLS: a TLS minimum version above the highest version the ACS speaks fails the handshake
  (seed 000 "Control the TLS Minimum Value" result table: "Protocol alert"); so does a cipher
  list that shares no TLS <= 1.2 suite with the ACS when TLS 1.2 or lower is negotiated (TLS
  1.3 suites are configured apart from the cipher string in OpenSSL 1.1.1, the phone's
  OpenSSL). A blank or invalid list means the TR-069 default suites (seed 000, "Configure the
  Cipher List": TR-069 uses the curl DEFAULT list).

The simulator's HTTPS client applies the same settings to a real TLS handshake
(``sim/http.py``); :func:`tls_lockout_reason` explains a failure in words, and lets scheduling
tests without sockets predict it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from urllib.parse import urlsplit

from acs_security.mapping import Catalogue, ValidationError, expand_cipher_list

__all__ = [
    "AcsTlsFacts",
    "ValueOf",
    "phone_suites",
    "TLS_VERSIONS",
    "covers_host",
    "phone_max_tls",
    "policy_lockout_reason",
    "tls_lockout_reason",
    "tls_settings",
]

#: ``value_of(path)``: a phone's current value text, None when it lacks the parameter.
ValueOf = Callable[[str], "str | None"]

#: TLS versions as the phone's settings spell them, oldest first.
TLS_VERSIONS: tuple[str, ...] = ("TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3")

FIPS_PATH = "Device.X_CISCO_SecuritySettings.FIPSMode"
ENABLE_CWMP_PATH = "Device.ManagementServer.EnableCWMP"
RESTRICTED_PATH = "Device.X_CISCO_SystemConfiguration.RestrictedAccessDomains"
CIPHER_PATH = "Device.X_CISCO_SecuritySettings.TLSCipherList"
# Before the tls-split firmware the phone has one TLS_Min_Version (TLS 1.0-1.2, seed 000);
# after it, TLS_Client_Min_Version governs the phone as a client (Cisco cfg.xml reference).
MIN_VERSION_PATHS = (
    "Device.X_CISCO_SecuritySettings.TLSClientMinVersion",
    "Device.X_CISCO_SecuritySettings.TLSMinVersion",
)


@dataclass(frozen=True, slots=True)
class AcsTlsFacts:
    """What the ACS's HTTPS endpoint speaks: its TLS versions and TLS <= 1.2 suites
    (OpenSSL names)."""

    min_version: str = "TLS 1.2"
    max_version: str = "TLS 1.3"
    suites: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for name in (self.min_version, self.max_version):
            if name not in TLS_VERSIONS:
                raise ValueError(f"{name!r} is not one of {', '.join(TLS_VERSIONS)}")
        if TLS_VERSIONS.index(self.min_version) > TLS_VERSIONS.index(self.max_version):
            raise ValueError("min_version is above max_version")


def covers_host(domains_text: str, host: str) -> bool:
    """True when the comma-separated ``domains_text`` lets the phone reach ``host``: an
    empty list restricts nothing; otherwise ``host`` equals a listed domain or lies below it."""
    domains = [d.strip().lower().rstrip(".") for d in domains_text.split(",") if d.strip()]
    if not domains:
        return True
    host = host.lower().rstrip(".")
    return bool(host) and any(host == d or host.endswith("." + d) for d in domains)


def policy_lockout_reason(value_of: ValueOf, acs_url: str) -> str | None:
    """Why the phone will not open a session to ``acs_url`` given its settings, or None.

    ``value_of(path)`` returns the phone's current value text or None when it lacks the
    parameter. Checked in the phone's order: FIPS, TR-069 enabled, restricted domains.
    """
    if (value_of(FIPS_PATH) or "No") == "Yes":
        return "FIPS Mode = Yes disables TR-069 (seed 000, Enable FIPS Mode)"
    if (value_of(ENABLE_CWMP_PATH) or "true") in ("false", "0"):
        return "Enable TR-069 = No"
    restricted = value_of(RESTRICTED_PATH) or ""
    host = urlsplit(acs_url).hostname or ""
    if not covers_host(restricted, host):
        return (f"Restricted Access Domains {restricted!r} do not include the ACS host "
                f"{host!r} (seed 000, Configure Restricted Access Domains)")
    return None


def phone_max_tls(has_client_min_version: bool) -> str:
    """The highest TLS version the phone's CWMP client offers. ASSUMPTION: firmware whose
    TLS setting offers TLS 1.3 (TLS_Client_Min_Version) speaks it; older firmware, whose
    TLS_Min_Version stops at TLS 1.2, does not."""
    return "TLS 1.3" if has_client_min_version else "TLS 1.2"


def tls_settings(value_of: ValueOf) -> tuple[str, str, str]:
    """(minimum version, maximum version, cipher list text) the phone's TLS client uses."""
    minimum = "TLS 1.1"  # the settings' factory default (seed 000)
    has_client = False
    for path in MIN_VERSION_PATHS:
        value = value_of(path)
        if value is not None:
            minimum = value if value in TLS_VERSIONS else minimum
            has_client = path.endswith("TLSClientMinVersion")
            break
    return minimum, phone_max_tls(has_client), value_of(CIPHER_PATH) or ""


def phone_suites(cipher_list: str, catalogue: Catalogue) -> tuple[str, ...]:
    """The TLS <= 1.2 suites the phone offers for TR-069 with that cipher list."""
    if cipher_list.strip():
        try:
            suites = expand_cipher_list(cipher_list, catalogue=catalogue).suites
            if suites:
                return suites
        except ValidationError:
            pass  # invalid: the application default applies (seed 000)
    for defaults in catalogue.ciphers.defaults:
        if "tr069" in defaults.application.lower() or "curl" in defaults.application.lower():
            return defaults.suites
    return ()


def tls_lockout_reason(value_of: ValueOf, acs: AcsTlsFacts, catalogue: Catalogue,
                       offered: Collection[str] | None = None) -> str | None:
    """Why a TLS handshake between the phone and the ACS fails, or None when it succeeds.

    ``offered`` overrides the phone's TLS <= 1.2 suites (computed from its cipher list).
    """
    minimum, maximum, cipher_list = tls_settings(value_of)
    lo, hi = TLS_VERSIONS.index(minimum), TLS_VERSIONS.index(maximum)
    acs_lo, acs_hi = TLS_VERSIONS.index(acs.min_version), TLS_VERSIONS.index(acs.max_version)
    if lo > acs_hi:
        return (f"TLS minimum version {minimum} is above the ACS's highest version "
                f"{acs.max_version} (protocol alert, seed 000 TLS Min Version table)")
    if acs_lo > hi:
        return f"the ACS needs {acs.min_version}; this firmware speaks at most {maximum}"
    negotiated = min(hi, acs_hi)
    if negotiated < TLS_VERSIONS.index("TLS 1.3") and acs.suites:
        suites = set(offered if offered is not None else phone_suites(cipher_list, catalogue))
        if not suites & acs.suites:
            return (f"TLS cipher list {cipher_list!r} shares no suite with the ACS "
                    f"at {TLS_VERSIONS[negotiated]} (handshake failure)")
    return None
