"""CN, SAN, host and device-serial names: parsing, checks and RFC 6125 host matching."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence

from cryptography import x509
from cryptography.x509.oid import NameOID

from acs_security.certs.errors import InvalidNameError

# --------------------------------------------------------------------------- names
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,63}")  # X.520 PrintableString, safe as a file name


def _dns_name(name: str, *, wildcard_ok: bool, what: str) -> str:
    value = name.strip().rstrip(".").lower()
    if not value.isascii():
        raise InvalidNameError(f"{what} {name!r}: write internationalised names as IDNA A-labels (xn--...)")
    labels = value.split(".")
    if wildcard_ok and labels[0] == "*" and len(labels) >= 3:
        labels = labels[1:]  # RFC 6125 §6.4.3 / §7.2: whole left-most label, not directly under a TLD
    if len(value) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise InvalidNameError(f"{what} {name!r} is not a valid DNS host name")
    return value


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None


def split_cisco_cn(cn: str) -> tuple[str, str | None]:
    """Split ``pv.telco.net/mailto:admin@telco.net`` into host and suffix (seed 000 CN form)."""
    host, sep, rest = cn.partition("/")
    return host.strip(), (rest if sep else None)


def parse_san(value: str) -> x509.GeneralName:
    """``DNS:name``, ``IP:addr`` or a bare name/address -> a SAN entry.

    Raises InvalidNameError for a malformed name or address.
    """
    kind, sep, rest = value.strip().partition(":")
    if sep and kind.upper() == "IP":
        ip = _ip(rest)
        if ip is None:
            raise InvalidNameError(f"SAN {value!r}: not an IP address")
        return x509.IPAddress(ip)
    if sep and kind.upper() == "DNS":
        return x509.DNSName(_dns_name(rest, wildcard_ok=True, what="SAN"))
    ip = _ip(value)
    if ip is not None:
        return x509.IPAddress(ip)
    return x509.DNSName(_dns_name(value, wildcard_ok=True, what="SAN"))


def _server_host(cn: str) -> x509.GeneralName:
    if not cn.strip() or len(cn) > 64:  # ub-common-name, RFC 5280 Appendix A
        raise InvalidNameError(f"CN {cn!r} must be 1 to 64 characters")
    host, _ = split_cisco_cn(cn)
    ip = _ip(host)
    return x509.IPAddress(ip) if ip is not None else x509.DNSName(_dns_name(host, wildcard_ok=True, what="CN host"))


def _san_list(first: Sequence[x509.GeneralName], values: Iterable[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for name in [*first, *(parse_san(v) for v in values)]:
        if name not in names:
            names.append(name)
    return names


def check_server_names(cn: str, sans: Sequence[str] = (), *,
                       include_cn_in_san: bool = True) -> list[x509.GeneralName]:
    """The SAN list of a server certificate or CSR for ``cn`` (host part first) plus ``sans``.

    Raises InvalidNameError for a malformed CN (seed 000 form ``FQDN[/...]``) or SAN.
    """
    host = _server_host(cn)
    return _san_list([host] if include_cn_in_san else [], sans)


def check_serial(serial: str) -> str:
    """``serial`` if it is usable as a device serial and a file name; raises InvalidNameError."""
    if not _SERIAL.fullmatch(serial):
        raise InvalidNameError(f"device serial {serial!r}: use 1-64 letters, digits, '.' or '-'")
    return serial


def device_serials(prefix: str, count: int, start: int = 1) -> list[str]:
    """``count`` serials ``<prefix><6 digits>`` from ``start``; raises InvalidNameError."""
    if count < 0:
        raise InvalidNameError("device count must be 0 or more")
    return [check_serial(f"{prefix}{n:06d}") for n in range(start, start + count)]


# --------------------------------------------------------------------------- host matching
def dns_name_matches(presented: str, reference: str) -> bool:
    """RFC 6125 §6.4 DNS-ID match: case-insensitive; a wildcard only as the whole left-most
    label, matching exactly one non-empty label, with at least two labels after it (§7.2)."""
    p = presented.strip().rstrip(".").lower().split(".")
    r = reference.strip().rstrip(".").lower().split(".")
    if len(p) != len(r) or not all(r):
        return False
    if p[0] == "*":
        return len(p) >= 3 and "*" not in "".join(p[1:]) and p[1:] == r[1:]
    return "*" not in "".join(p) and p == r  # partial wildcards (f*.x.y) are not matched (RFC 9525 §6.3)


def subject_alt_names(cert: x509.Certificate) -> list[x509.GeneralName]:
    """The subjectAltName entries, or [] when there is none (or it is malformed)."""
    try:
        return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except (x509.ExtensionNotFound, x509.DuplicateExtension, ValueError):
        return []


def common_names(cert: x509.Certificate) -> list[str]:
    """The subject CN values, in order."""
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]


def host_match(cert: x509.Certificate, host: str) -> str | None:
    """``"san"`` when a SAN entry matches ``host``, ``"cn"`` when only the CN host part does
    (seed 000 form ``host/...``), else None. IP hosts match IP SANs. Raises InvalidNameError."""
    ip = _ip(host)
    if ip is None:
        _dns_name(host, wildcard_ok=False, what="host")
    for name in subject_alt_names(cert):
        if ip is not None and isinstance(name, x509.IPAddress) and name.value == ip:
            return "san"
        if ip is None and isinstance(name, x509.DNSName) and dns_name_matches(name.value, host):
            return "san"
    for cn in common_names(cert):
        cn_host, _ = split_cisco_cn(cn)
        if (ip is not None and _ip(cn_host) == ip) or (ip is None and dns_name_matches(cn_host, host)):
            return "cn"
    return None


def device_serial_from_certificate(cert: x509.Certificate) -> str | None:
    """The subject serialNumber attribute, else the CN, else None."""
    for oid in (NameOID.SERIAL_NUMBER, NameOID.COMMON_NAME):
        for attr in cert.subject.get_attributes_for_oid(oid):
            value = str(attr.value).strip()
            if value:
                return value
    return None
