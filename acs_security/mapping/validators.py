"""Single-value validation: the phone's rules for each value format.

Every value is checked in its cfg.xml text form (what the phone's web page and cfg.xml
take). Each check cites the seed it enforces; each failure names the setting (element
and TR-069 path), the value (masked for secrets), the rule and the allowed values.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from acs_security.mapping.catalogue import Catalogue, load_catalogue
from acs_security.mapping.ciphers import CipherExpansion, CipherListError, expand_cipher_string
from acs_security.mapping.errors import ValidationError
from acs_security.mapping.firewall import FirewallError, parse_firewall_options
from acs_security.mapping.records import FORMATS, Setting

__all__ = ["validate_value", "expand_cipher_list", "is_hostname", "is_ip_address", "FORMAT_CHECKS"]


class _Invalid(Exception):
    def __init__(self, rule: str, allowed: str) -> None:
        super().__init__(rule)
        self.rule = rule
        self.allowed = allowed


_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
# scheme://host[:port][/path...]; no user-info (a password has no place in these URLs).
_URL = re.compile(
    r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<host>\[[0-9A-Fa-f:.]+\]|[^/:?#\[\]@\s]+)"
    r"(?::(?P<port>[^/?#]*))?(?P<rest>[/?#]\S*)?$"
)
# XML 1.0 Char production: what a cfg.xml file can carry at all.
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def is_ip_address(text: str) -> bool:
    """True for a dotted-quad IPv4 or an IPv6 address (no zone, no brackets)."""
    if "%" in text:
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_hostname(text: str, *, require_dot: bool = False) -> bool:
    """True for an RFC 1123 host name (labels of letters, digits, hyphens; <= 253 chars).

    An all-numeric last label is refused, so that "10.1.2" is not taken for a name.
    """
    name = text[:-1] if text.endswith(".") else text
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    if not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        return False
    return len(labels) >= 2 or not require_dot


def _host(text: str, what: str, allowed: str) -> None:
    if text.startswith("["):
        inner = text[1:-1] if text.endswith("]") else ""
        if ":" not in inner or not is_ip_address(inner):
            raise _Invalid(f"{what} {text!r} is not a bracketed IPv6 address", allowed)
        return
    if not (is_ip_address(text) or is_hostname(text)):
        raise _Invalid(f"{what} {text!r} is neither an IP address nor a host name", allowed)


def _port_text(text: str, allowed: str, low: int = 1, high: int = 65535) -> int:
    if not text or not text.isascii() or not text.isdigit():
        raise _Invalid(f"{text!r} is not a port number", allowed)
    port = int(text)
    if not low <= port <= high:
        raise _Invalid(f"port {port} is outside {low}-{high}", allowed)
    return port


def _url(value: str, schemes: tuple[str, ...], allowed: str, *, path_allowed: bool) -> None:
    authority = value.partition("://")[2].partition("/")[0]
    if "@" in authority:
        raise _Invalid("user information (user:password@) is not allowed in this URL", allowed)
    match = _URL.match(value)
    if match is None:
        if "://" not in value:
            raise _Invalid("not a URL: it needs a scheme (" + ", ".join(f"{s}://" for s in schemes) + ")", allowed)
        raise _Invalid("not a valid URL (user information and spaces are not allowed)", allowed)
    scheme = match.group("scheme").lower()
    if scheme not in schemes:
        raise _Invalid(f"scheme {match.group('scheme')}:// is not supported", allowed)
    _host(match.group("host"), "host", allowed)
    if match.group("port") is not None:
        _port_text(match.group("port"), allowed)
    if match.group("rest") and not path_allowed:
        raise _Invalid(f"nothing may follow the host and port ({match.group('rest')!r})", allowed)


# ---------------------------------------------------------------------------- formats
def _enum(s: Setting, value: str, cat: Catalogue) -> None:
    allowed = ", ".join(s.values)
    if value in s.values:
        return
    folded = {v.casefold(): v for v in s.values}
    if value.strip().casefold() in folded:
        raise _Invalid(f"the phone spells it {folded[value.strip().casefold()]!r}", allowed)
    raise _Invalid("not one of the values the phone accepts", allowed)


def _string(s: Setting, value: str, cat: Catalogue) -> None:
    # Length only: the value itself is free text (and may be a secret, never quoted).
    return None


def _fqdn_list(s: Setting, value: str, cat: Catalogue) -> None:
    # Seed 000 "Configure Restricted Access Domains": FQDNs separated by commas
    # (example "voiceip.com, voiceip1.com").
    allowed = "comma-separated fully qualified domain names, e.g. voiceip.com, voiceip1.com"
    if value.strip() == "":
        return
    for item in value.split(","):
        name = item.strip()
        if not name:
            raise _Invalid("empty entry between commas", allowed)
        if "://" in name or "/" in name or ":" in name:
            raise _Invalid(f"{name!r}: a domain name only, without scheme, port or path", allowed)
        if is_ip_address(name):
            raise _Invalid(f"{name!r} is an IP address, not a domain name", allowed)
        if not is_hostname(name, require_dot=True):
            raise _Invalid(f"{name!r} is not a fully qualified domain name", allowed)


def _dhcp(family: str) -> Callable[[Setting, str, Catalogue], None]:
    def check(s: Setting, value: str, cat: Catalogue) -> None:
        # Seed 000 "DHCP Option Support": the options the phone supports.
        table = cat.dhcp_options[family]
        allowed = "comma-separated option numbers from " + ", ".join(str(k) for k in sorted(table))
        if value.strip() == "":
            return
        seen: set[int] = set()
        for item in value.split(","):
            text = item.strip()
            if not text.isascii() or not text.isdigit():
                raise _Invalid(f"{text!r} is not an option number", allowed)
            number = int(text)
            if number not in table:
                raise _Invalid(f"option {number} is not supported by the phone", allowed)
            if number in seen:
                raise _Invalid(f"option {number} is listed twice", allowed)
            seen.add(number)

    return check


def _cipher_list(s: Setting, value: str, cat: Catalogue) -> None:
    # Blank is valid: each application then uses its default suites (seed 000).
    if value == "":
        return
    try:
        expand_cipher_string(value, cat.ciphers)
    except CipherListError as exc:
        raise _Invalid(exc.rule, exc.allowed) from None


def _firewall(s: Setting, value: str, cat: Catalogue) -> None:
    try:
        parse_firewall_options(value)
    except FirewallError as exc:
        raise _Invalid(exc.rule, exc.allowed) from None


def _ldap_url(s: Setting, value: str, cat: Catalogue) -> None:
    # Seed 000 "Configure LDAP over TLS" / "Configure StartTLS": ldaps://host[:port]
    # (default 636) or ldap://host[:port] (default 389); host is an IP or domain name.
    if value == "":
        return
    _url(value, ("ldaps", "ldap"), "ldaps://host[:port] (default port 636) or ldap://host[:port] (default port 389)",
         path_allowed=False)


def _pac_url(s: Setting, value: str, cat: Catalogue) -> None:
    # Seed 000 Table 8, PAC URL: "TFTP, HTTP, and HTTPS are supported".
    if value == "":
        return
    _url(value, ("tftp", "http", "https"), "a tftp://, http:// or https:// URL of a PAC file", path_allowed=True)


def _http_url(s: Setting, value: str, cat: Catalogue) -> None:
    # TR-069 3.4: the ACS URL is an HTTP or HTTPS URL.
    if value == "":
        return
    _url(value, ("http", "https"), "an http:// or https:// URL", path_allowed=True)


def _host_format(s: Setting, value: str, cat: Catalogue) -> None:
    # Seed 000 Table 8, Proxy Host: "IP address or hostname ... The scheme is not required";
    # seed 001 Table 9, VPN Server: "IP address or FQDN".
    allowed = "an IP address or host name, without scheme or port"
    if value == "":
        return
    if "://" in value:
        raise _Invalid("no scheme (http://, https://): the host name only", allowed)
    if "/" in value:
        raise _Invalid("no path: the host name only", allowed)
    if not is_ip_address(value) and ":" in value:
        raise _Invalid("no port here: the port is a setting of its own", allowed)
    _host(value, "host", allowed)


def _port(s: Setting, value: str, cat: Catalogue) -> None:
    low, high = s.minimum or 1, s.maximum or 65535
    _port_text(value, f"a port number {low}-{high}", low, high)


def _unsigned_int(s: Setting, value: str, cat: Catalogue) -> None:
    low = s.minimum if s.minimum is not None else 0
    high = s.maximum if s.maximum is not None else 4294967295
    allowed = f"a whole number {low}-{high}"
    if not value or not value.isascii() or not value.isdigit():
        raise _Invalid(f"{value!r} is not a whole number", allowed)
    if not low <= int(value) <= high:
        raise _Invalid(f"{value} is outside {low}-{high}", allowed)


def _ipv4(s: Setting, value: str, cat: Catalogue) -> None:
    allowed = "a dotted IPv4 address such as 192.0.2.10"
    if value == "":
        return
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        raise _Invalid("not an IPv4 address", allowed) from None


def _netmask(s: Setting, value: str, cat: Catalogue) -> None:
    allowed = "a dotted IPv4 netmask such as 255.255.255.0"
    if value == "":
        return
    try:
        mask = int(ipaddress.IPv4Address(value))
    except ValueError:
        raise _Invalid("not a dotted IPv4 netmask", allowed) from None
    inverted = (~mask) & 0xFFFFFFFF
    if inverted & (inverted + 1):  # the ones of a mask are contiguous from the left
        raise _Invalid("not a netmask: its one bits are not contiguous", allowed)


FORMAT_CHECKS: dict[str, Callable[[Setting, str, Catalogue], None]] = {
    "enum": _enum,
    "yesno": _enum,
    "string": _string,
    "fqdn_list": _fqdn_list,
    "dhcp_options": _dhcp("dhcpv4"),
    "dhcpv6_options": _dhcp("dhcpv6"),
    "cipher_list": _cipher_list,
    "firewall_options": _firewall,
    "ldap_url": _ldap_url,
    "pac_url": _pac_url,
    "http_url": _http_url,
    "host": _host_format,
    "port": _port,
    "unsigned_int": _unsigned_int,
    "ipv4": _ipv4,
    "netmask": _netmask,
}
assert set(FORMAT_CHECKS) == FORMATS, "every format named in records.FORMATS has a check"


def validate_value(
    setting: Setting | str,
    value: str,
    *,
    catalogue: Catalogue | None = None,
    extension: int | None = None,
) -> None:
    """Check one value (cfg.xml text form) as the phone would.

    ``setting`` is a Setting or any key the catalogue resolves (``SIP_Transport_2_``
    gives extension 2). Raises ValidationError(setting, value, rule, allowed) when the
    phone would refuse it; UnknownSettingError for an unknown key.
    """
    cat = catalogue if catalogue is not None else load_catalogue()
    if isinstance(setting, str):
        setting, found_ext = cat.resolve(setting)
        extension = extension if extension is not None else found_ext
    if not isinstance(value, str):
        raise ValidationError(setting, None, f"a value is text, not {type(value).__name__}", extension=extension)
    bad = _XML_BAD.search(value)
    if bad:
        raise ValidationError(setting, value,
                              f"control character U+{ord(bad.group()):04X} cannot be carried in cfg.xml",
                              extension=extension)
    if setting.max_length is not None and len(value) > setting.max_length:
        raise ValidationError(
            setting, value, f"{len(value)} characters; the phone takes at most {setting.max_length}",
            f"at most {setting.max_length} characters", extension=extension,
        )
    try:
        FORMAT_CHECKS[setting.format](setting, value, cat)
    except _Invalid as exc:
        raise ValidationError(setting, value, exc.rule, exc.allowed, extension=extension) from None


def expand_cipher_list(text: str, *, catalogue: Catalogue | None = None) -> CipherExpansion:
    """What a TLS Cipher List selects with the local OpenSSL (TLS <= 1.2 suites in order,
    TLS 1.3 suites apart). Raises ValidationError naming TLS_Cipher_List when the phone
    would refuse it or it selects nothing; a blank list selects nothing itself (the phone
    then uses per-application defaults, ``catalogue.ciphers.defaults``)."""
    cat = catalogue if catalogue is not None else load_catalogue()
    setting = next(s for s in cat.settings if s.format == "cipher_list")
    if text == "":
        raise ValidationError(
            setting, text, "a blank list selects nothing itself: each application uses its default suites",
            "; ".join(f"{d.description}: {d.cipher_string or ':'.join(d.suites)}" for d in cat.ciphers.defaults),
        )
    validate_value(setting, text, catalogue=cat)
    return expand_cipher_string(text, cat.ciphers)
