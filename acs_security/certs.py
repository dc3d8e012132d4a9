"""Certificate tools for an ACS and the Cisco phones it manages.

Keys and certificate signing requests for provisioning/ACS servers, a development CA with
server and per-device client certificates (mutual TLS with simulated phones), certificate
lint against what the phones accept, fingerprints and PKCS#12 bundles.

Everything here works on ``cryptography`` objects in memory; only :func:`write_file` and
:func:`write_pem` touch the filesystem, and only when called. Time comes in as ``now``.
Key generation and default certificate serial numbers draw from the OS CSPRNG, as
``cryptography`` does (RFC 5280 §4.1.2.2 wants unpredictable serials); pass ``key=`` and
``serial_number=`` for fixed values.
"""

from __future__ import annotations

import enum
import ipaddress
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Union

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PrivateKeyTypes,
    PublicKeyTypes,
)
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "KEY_TYPES", "MIN_RSA_BITS", "EXPIRY_WARNING", "LOOPBACK_SANS", "SignedKey",
    "CertificateError", "NotACertificateError", "NotAPrivateKeyError", "KeyPasswordError",
    "KeyMismatchError", "WeakKeyError", "UnknownKeyTypeError", "InvalidNameError", "OutputExistsError",
    "Severity", "Finding",
    "generate_key", "require_acceptable_key", "describe_key", "parse_san", "split_cisco_cn",
    "make_ca", "make_server_cert", "make_device_cert", "make_csr",
    "check_server_names", "check_serial", "device_serials",
    "load_certificate", "load_certificates", "load_private_key", "key_matches_certificate",
    "subject_alt_names", "common_names", "dns_name_matches", "host_match", "lint_certificate", "lint_exit_code",
    "fingerprint", "device_serial_from_certificate", "to_pkcs12", "pem_bytes", "write_file", "write_pem",
]

#: Key types this module generates. RSA below 2048 bits is refused: FIPS-mode phones reject
#: such certificates (seeds 002/003, "FIPS mode"), although seed 000's CSR example is 1024-bit.
KEY_TYPES: tuple[str, ...] = ("rsa2048", "rsa3072", "rsa4096", "ec-p256", "ec-p384")
MIN_RSA_BITS = 2048
EXPIRY_WARNING = timedelta(days=30)
#: Default extra SANs of a development server certificate, so loopback tests can use HTTPS.
LOOPBACK_SANS: tuple[str, ...] = ("DNS:localhost", "IP:127.0.0.1", "IP:::1")
# A peer whose clock is a little behind must still accept a certificate issued just now.
_BACKDATE = timedelta(minutes=5)

SignedKey = Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]
Obj = Union[x509.Certificate, x509.CertificateSigningRequest, PrivateKeyTypes]

_SEED_CN = "seed 000, HTTPS provisioning: server certificate CN = host FQDN, optionally followed by /..."
_SEED_FIPS = "seeds 002/003, FIPS mode: RSA keys of 2048 bits or more"
_SEED_HASH = "seed 000, Get a Signed Server Certificate: Cisco recommends SHA256 signing"
_SEED_HOST = "seed 000, Enable Hostname Verification: the phone checks SAN and CN; RFC 6125 §6.4"
_SEED_CLIENT = "seed 000, Multiplatform Phone CA Client Root Certificate: per-device client certificate"
_EC_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384"}


# --------------------------------------------------------------------------- errors
class CertificateError(ValueError):
    """Bad certificate input; the CLI answers it with exit code 2 and writes nothing."""

    exit_code = 2


class NotACertificateError(CertificateError):
    """The input is not an X.509 certificate (PEM or DER)."""


class NotAPrivateKeyError(CertificateError):
    """The input is not a private key (PEM or DER)."""


class KeyPasswordError(CertificateError):
    """The private key is encrypted and the password is missing or wrong (never shown)."""


class KeyMismatchError(CertificateError):
    """The private key does not belong to the certificate."""


class WeakKeyError(CertificateError):
    """A key the phones refuse (RSA < 2048 bits, other curves or algorithms)."""


class UnknownKeyTypeError(CertificateError):
    """A key type name outside :data:`KEY_TYPES`."""


class InvalidNameError(CertificateError):
    """A CN, SAN, host or device serial that is not well formed."""


class OutputExistsError(CertificateError):
    """The output file exists and overwriting was not asked for."""


# --------------------------------------------------------------------------- records
class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Finding:
    """One lint result: rule id, severity, what is wrong, and where the rule comes from."""

    rule: str
    severity: Severity
    message: str
    reference: str

    def to_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "severity": self.severity.value, "message": self.message,
                "reference": self.reference}


# --------------------------------------------------------------------------- keys
def generate_key(key_type: str = "ec-p256") -> SignedKey:
    """A new private key of ``key_type`` (one of :data:`KEY_TYPES`).

    Raises WeakKeyError for RSA below 2048 bits, UnknownKeyTypeError for other names.
    """
    kt = key_type.strip().lower()
    match = re.fullmatch(r"rsa[-:]?(\d{1,5})", kt)
    if match:
        bits = int(match.group(1))
        if bits < MIN_RSA_BITS:
            raise WeakKeyError(f"RSA {bits}-bit keys are refused: FIPS-mode phones need RSA keys of "
                               f"{MIN_RSA_BITS} bits or more (seeds 002/003)")
        if f"rsa{bits}" not in KEY_TYPES:
            raise UnknownKeyTypeError(f"unsupported RSA size {bits}: choose one of {', '.join(KEY_TYPES)}")
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    if kt == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kt == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    raise UnknownKeyTypeError(f"unknown key type {key_type!r}: choose one of {', '.join(KEY_TYPES)}")


def describe_key(public_key: PublicKeyTypes | x509.Certificate) -> str:
    """A short name such as ``RSA 2048`` or ``EC P-256`` (of a key or a certificate's key)."""
    if isinstance(public_key, x509.Certificate):
        try:
            public_key = public_key.public_key()
        except (ValueError, UnsupportedAlgorithm):
            return "unreadable key"
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"RSA {public_key.key_size}"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return f"EC {_EC_CURVES.get(public_key.curve.name, public_key.curve.name)}"
    return type(public_key).__name__.replace("PublicKey", "").lstrip("_") or "unknown"


def _key_problem(public_key: PublicKeyTypes, fips: bool) -> Finding | None:
    if isinstance(public_key, rsa.RSAPublicKey):
        bits = public_key.key_size
        if bits >= MIN_RSA_BITS:
            return None
        # Seed 000 still shows a 1024-bit CSR, so non-FIPS phones take it; FIPS phones do not.
        severity = Severity.ERROR if fips or bits < 1024 else Severity.WARNING
        return Finding("key-size", severity, f"RSA key is {bits} bits; FIPS-mode phones need {MIN_RSA_BITS} "
                       "bits or more (\"Cert key size is not FIPS compliant\")", _SEED_FIPS)
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name in _EC_CURVES:
            return None
        return Finding("key-curve", Severity.ERROR, f"EC curve {public_key.curve.name} is not accepted; use "
                       "P-256 or P-384", "seed 000, TLS cipher list: ECDHE_ECDSA suites (P-256/P-384)")
    return Finding("key-type", Severity.ERROR, f"{describe_key(public_key)} keys are not accepted; use RSA >= "
                   f"{MIN_RSA_BITS} or EC P-256/P-384", _SEED_FIPS)


def require_acceptable_key(public_key: PublicKeyTypes) -> None:
    """Raise WeakKeyError unless the key is RSA >= 2048 bits or EC P-256/P-384."""
    problem = _key_problem(public_key, fips=True)
    if problem is not None:
        raise WeakKeyError(problem.message)


def key_matches_certificate(key: PrivateKeyTypes, cert: x509.Certificate) -> bool:
    """True when ``key`` is the private half of ``cert``'s public key."""
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_key().public_bytes(*spki) == cert.public_key().public_bytes(*spki)


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


# --------------------------------------------------------------------------- issuing
def _utc(now: datetime) -> datetime:
    # cryptography reads naive datetimes as UTC; make that explicit for the arithmetic here.
    return now.replace(tzinfo=timezone.utc) if now.tzinfo is None else now.astimezone(timezone.utc)


def _sign_hash(key: CertificateIssuerPrivateKeyTypes) -> hashes.SHA256 | hashes.SHA384 | None:
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()  # seed 000: SHA256 recommended; SHA-1/MD5 are lint errors


def _leaf_usage(key: SignedKey) -> x509.KeyUsage:
    # RSA key transport suites (AES256-SHA, seed 000 cipher list) need keyEncipherment.
    rsa_key = isinstance(key, rsa.RSAPrivateKey)
    return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=rsa_key,
                         data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                         encipher_only=False, decipher_only=False)


def _issue(subject: x509.Name, key: SignedKey, issuer: x509.Certificate | None, issuer_key: SignedKey,
           now: datetime, days: int, serial_number: int | None,
           extensions: list[tuple[x509.ExtensionType, bool]]) -> x509.Certificate:
    if days < 1:
        raise CertificateError("validity must be at least 1 day")
    if issuer is not None and not key_matches_certificate(issuer_key, issuer):
        raise KeyMismatchError("the CA private key does not belong to the CA certificate")
    start = _utc(now) - _BACKDATE
    issuer_public = issuer_key.public_key()
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer.subject if issuer is not None else subject)
               .public_key(key.public_key())
               .serial_number(serial_number if serial_number is not None else x509.random_serial_number())
               .not_valid_before(start)
               .not_valid_after(start + timedelta(days=days))
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public), critical=False))
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical=critical)
    return builder.sign(issuer_key, _sign_hash(issuer_key))


def make_ca(common_name: str, *, now: datetime, key_type: str = "ec-p256", days: int = 3650,
            key: SignedKey | None = None, serial_number: int | None = None,
            organization: str | None = None) -> tuple[x509.Certificate, SignedKey]:
    """A self-signed CA (basicConstraints CA=true, pathLen 0) -> ``(certificate, key)``.

    Raises InvalidNameError for the CN, UnknownKeyTypeError/WeakKeyError for ``key_type``,
    CertificateError for ``days`` < 1.
    """
    if not common_name.strip() or len(common_name) > 64:  # ub-common-name, RFC 5280 Appendix A
        raise InvalidNameError(f"CA CN {common_name!r} must be 1 to 64 characters")
    key = key if key is not None else generate_key(key_type)
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)] if organization else []
    subject = x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    usage = x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                          encipher_only=False, decipher_only=False)
    exts: list[tuple[x509.ExtensionType, bool]] = [(x509.BasicConstraints(ca=True, path_length=0), True),
                                                   (usage, True)]
    return _issue(subject, key, None, key, now, days, serial_number, exts), key


def make_server_cert(ca: x509.Certificate, ca_key: SignedKey, *, cn: str, sans: Sequence[str] = (),
                     now: datetime, key_type: str = "ec-p256", days: int = 365, key: SignedKey | None = None,
                     serial_number: int | None = None) -> tuple[x509.Certificate, SignedKey]:
    """A TLS server certificate (EKU serverAuth) for ``cn`` -> ``(certificate, key)``.

    ``cn`` may carry seed 000's ``/...`` suffix; its host part is always the first SAN entry.
    Raises InvalidNameError, KeyMismatchError (``ca_key`` not the CA's), UnknownKeyTypeError, WeakKeyError.
    """
    names = check_server_names(cn, sans)
    key = key if key is not None else generate_key(key_type)
    exts: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=False, path_length=None), True), (_leaf_usage(key), True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        (x509.SubjectAlternativeName(names), False)]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn.strip())])
    return _issue(subject, key, ca, ca_key, now, days, serial_number, exts), key


def make_device_cert(ca: x509.Certificate, ca_key: SignedKey, serial: str, *, now: datetime,
                     key_type: str = "ec-p256", days: int = 365, key: SignedKey | None = None,
                     serial_number: int | None = None,
                     organization: str | None = None) -> tuple[x509.Certificate, SignedKey]:
    """A phone client certificate (EKU clientAuth) whose subject carries ``serial`` both as the
    serialNumber attribute and as CN, so an ACS can match either -> ``(certificate, key)``.

    Raises InvalidNameError, KeyMismatchError, UnknownKeyTypeError, WeakKeyError.
    """
    check_serial(serial)
    key = key if key is not None else generate_key(key_type)
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)] if organization else []
    subject = x509.Name([*attrs, x509.NameAttribute(NameOID.SERIAL_NUMBER, serial),
                         x509.NameAttribute(NameOID.COMMON_NAME, serial)])
    exts: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=False, path_length=None), True), (_leaf_usage(key), True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)]
    return _issue(subject, key, ca, ca_key, now, days, serial_number, exts), key


def make_csr(key: SignedKey, *, cn: str, sans: Sequence[str] = (), include_cn_in_san: bool = True,
             organization: str | None = None) -> x509.CertificateSigningRequest:
    """A SHA-256 signed CSR for a provisioning/ACS server (seed 000, Get a Signed Server Certificate).

    Raises InvalidNameError for the CN/SANs, WeakKeyError for keys the phones refuse.
    """
    require_acceptable_key(key.public_key())
    names = check_server_names(cn, sans, include_cn_in_san=include_cn_in_san)
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)] if organization else []
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, cn.strip())]))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, _sign_hash(key))


# --------------------------------------------------------------------------- loading
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.S)


def _pem_blocks(data: bytes) -> list[tuple[str, bytes]] | None:
    if b"-----BEGIN " not in data:
        return None  # DER (binary) input
    return [(m.group(1).decode("ascii"), m.group(0)) for m in _PEM_BLOCK.finditer(data)]


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in PEM input (in order), or the one DER certificate.

    Raises NotACertificateError saying what the input is instead.
    """
    if not data.strip():
        raise NotACertificateError("empty input: expected an X.509 certificate (PEM or DER)")
    blocks = _pem_blocks(data)
    if blocks is None:
        try:
            return [x509.load_der_x509_certificate(data)]
        except ValueError:
            pass
        try:
            serialization.load_der_private_key(data, None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise NotACertificateError("input is neither a PEM nor a DER X.509 certificate") from None
        raise NotACertificateError("input is a private key, not a certificate")
    certs = [block for label, block in blocks if label == "CERTIFICATE"]
    if not certs:
        labels = ", ".join(sorted({label for label, _ in blocks})) or "no complete PEM block"
        raise NotACertificateError(f"PEM input holds {labels}, not a CERTIFICATE")
    out = []
    for index, block in enumerate(certs, 1):
        try:
            out.append(x509.load_pem_x509_certificate(block))
        except ValueError:
            raise NotACertificateError(f"PEM CERTIFICATE block {index} is not a valid X.509 certificate") from None
    return out


def load_certificate(data: bytes) -> x509.Certificate:
    """The first certificate of PEM or DER input; raises NotACertificateError."""
    return load_certificates(data)[0]


def _load_key_once(block: bytes, password: bytes | None, pem: bool) -> PrivateKeyTypes:
    loader = serialization.load_pem_private_key if pem else serialization.load_der_private_key
    try:
        return loader(block, password)
    except TypeError:
        if password is None:
            raise KeyPasswordError("the private key is encrypted: its password is needed") from None
        return _load_key_once(block, None, pem)  # a password was given for a key that is not encrypted
    except ValueError:
        if password is not None:
            try:
                loader(block, None)
            except TypeError:  # it is encrypted, so the password was wrong
                raise KeyPasswordError("wrong password for the encrypted private key") from None
            except (ValueError, UnsupportedAlgorithm):
                pass
        raise NotAPrivateKeyError("input is not a valid private key (PEM or DER)") from None
    except UnsupportedAlgorithm:
        raise NotAPrivateKeyError("the private key uses an unsupported algorithm") from None


def load_private_key(data: bytes, password: bytes | None = None) -> PrivateKeyTypes:
    """A private key from PEM or DER input, decrypted with ``password`` when encrypted.

    Raises KeyPasswordError (missing/wrong password), NotAPrivateKeyError.
    """
    if not data.strip():
        raise NotAPrivateKeyError("empty input: expected a private key (PEM or DER)")
    blocks = _pem_blocks(data)
    if blocks is None:
        return _load_key_once(data, password, pem=False)
    keys = [block for label, block in blocks if label.endswith("PRIVATE KEY")]
    if not keys:
        labels = ", ".join(sorted({label for label, _ in blocks})) or "no complete PEM block"
        raise NotAPrivateKeyError(f"PEM input holds {labels}, not a PRIVATE KEY")
    return _load_key_once(keys[0], password, pem=True)


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


# --------------------------------------------------------------------------- lint
def _ext(cert: x509.Certificate, cls: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except (x509.ExtensionNotFound, x509.DuplicateExtension, ValueError):
        return None


def _lint_signature(cert: x509.Certificate) -> list[Finding]:
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return [Finding("signature-hash", Severity.ERROR, "unsupported signature algorithm "
                        f"{cert.signature_algorithm_oid.dotted_string}", _SEED_HASH)]
    if isinstance(algorithm, (hashes.MD5, hashes.SHA1)):
        return [Finding("signature-hash", Severity.ERROR, f"signed with {algorithm.name.upper()}; use SHA-256 "
                        "or better (collisions are practical)", _SEED_HASH)]
    return []


def _lint_validity(cert: x509.Certificate, now: datetime, warn: timedelta, prefix: str = "") -> list[Finding]:
    ref = "RFC 5280 §4.1.2.5"
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    what = "the CA certificate" if prefix else "the certificate"
    if end < start:
        return [Finding(f"{prefix}validity-order", Severity.ERROR, f"{what} expires before it starts", ref)]
    if now < start:
        return [Finding(f"{prefix}not-yet-valid", Severity.ERROR,
                        f"{what} is not valid before {start.isoformat()}", ref)]
    if now > end:
        return [Finding(f"{prefix}expired", Severity.ERROR, f"{what} expired on {end.isoformat()}", ref)]
    if end - now < warn:
        return [Finding(f"{prefix}expiring-soon", Severity.WARNING,
                        f"{what} expires on {end.isoformat()}, in {(end - now).days} days", ref)]
    return []


def _role(cert: x509.Certificate, purpose: str, host: str | None) -> str:
    if purpose not in ("auto", "server", "device", "ca"):
        raise ValueError(f"purpose must be auto, server, device or ca, not {purpose!r}")
    if purpose != "auto":
        return purpose
    bc = _ext(cert, x509.BasicConstraints)
    if isinstance(bc, x509.BasicConstraints) and bc.ca:
        return "ca"
    eku = _ext(cert, x509.ExtendedKeyUsage)
    if host is None and isinstance(eku, x509.ExtendedKeyUsage) and ExtendedKeyUsageOID.CLIENT_AUTH in eku \
            and ExtendedKeyUsageOID.SERVER_AUTH not in eku:
        return "device"
    return "server"


def _lint_server_names(cert: x509.Certificate) -> list[Finding]:
    out: list[Finding] = []
    cns = common_names(cert)
    sans = subject_alt_names(cert)
    dns = [n.value for n in sans if isinstance(n, x509.DNSName)]
    if not cns:
        out.append(Finding("cn-missing", Severity.ERROR, "subject has no CN; the phones need CN = server FQDN",
                           _SEED_CN))
    for cn in cns[:1]:
        host, suffix = split_cisco_cn(cn)
        if _ip(host) is not None:
            out.append(Finding("cn-form", Severity.WARNING, f"CN {cn!r} is an IP address; the phones expect "
                               "the server FQDN", _SEED_CN))
            continue
        try:
            _dns_name(host, wildcard_ok=True, what="CN host")
        except InvalidNameError:
            out.append(Finding("cn-form", Severity.ERROR, f"CN {cn!r} does not start with a host name; use "
                               "FQDN or FQDN/... (e.g. pv.telco.net/mailto:admin@telco.net)", _SEED_CN))
            continue
        if "." not in host and host.lower() != "localhost":  # localhost: loopback name, RFC 6761 §6.3
            out.append(Finding("cn-form", Severity.WARNING, f"CN host {host!r} is not fully qualified", _SEED_CN))
        if suffix is not None and not any(dns_name_matches(d, host) for d in dns):
            out.append(Finding("cn-suffix-needs-san", Severity.WARNING, f"clients other than the phones do not "
                               f"read CN {cn!r} as a host name; add DNS:{host} to the SAN", "RFC 6125 §6.4.4"))
    if not sans:
        out.append(Finding("san-missing", Severity.WARNING, "no subjectAltName: TLS clients that follow RFC 6125 "
                           "/ RFC 9525 ignore the CN", _SEED_HOST))
    for name in dns:
        labels = name.split(".")
        if "*" in name and (labels[0] != "*" or len(labels) < 3 or "*" in "".join(labels[1:])):
            out.append(Finding("san-wildcard", Severity.WARNING, f"SAN DNS:{name} never matches: a wildcard must "
                               "be the whole left-most label above a registered domain", "RFC 6125 §6.4.3"))
    eku = _ext(cert, x509.ExtendedKeyUsage)
    if isinstance(eku, x509.ExtendedKeyUsage) and ExtendedKeyUsageOID.SERVER_AUTH not in eku \
            and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku:
        out.append(Finding("eku-server", Severity.ERROR, "extendedKeyUsage lacks serverAuth: TLS clients refuse "
                           "it as a server certificate", "RFC 5280 §4.2.1.12"))
    return out


def _lint_device(cert: x509.Certificate) -> list[Finding]:
    out: list[Finding] = []
    if device_serial_from_certificate(cert) is None:
        out.append(Finding("device-serial", Severity.WARNING, "subject has neither serialNumber nor CN: the ACS "
                           "cannot tell which phone this is", _SEED_CLIENT))
    eku = _ext(cert, x509.ExtendedKeyUsage)
    if isinstance(eku, x509.ExtendedKeyUsage) and ExtendedKeyUsageOID.CLIENT_AUTH not in eku \
            and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku:
        out.append(Finding("eku-client", Severity.ERROR, "extendedKeyUsage lacks clientAuth: a TLS server refuses "
                           "it as a client certificate", "RFC 5280 §4.2.1.12"))
    return out


def _lint_host(cert: x509.Certificate, host: str) -> list[Finding]:
    matched = host_match(cert, host)
    if matched is None:
        names = [str(n.value) for n in subject_alt_names(cert)]
        names += [split_cisco_cn(cn)[0] for cn in common_names(cert)]
        return [Finding("host-mismatch", Severity.ERROR, f"{host} matches none of the certificate's names "
                        f"({', '.join(dict.fromkeys(names)) or 'none'})", _SEED_HOST)]
    if matched == "cn" and subject_alt_names(cert):
        return [Finding("host-cn-only", Severity.WARNING, f"{host} matches only the CN; clients other than the "
                        "phones ignore the CN when a SAN is present", "RFC 6125 §6.4.4")]
    return []


def _signature_verifies(cert: x509.Certificate, issuer_key: PublicKeyTypes) -> bool:
    # Verified by hand, not with verify_directly_issued_by, so SHA-1 signed chains still get
    # an answer (the SHA-1 itself is reported by the signature-hash rule).
    try:
        algorithm = cert.signature_hash_algorithm
        if isinstance(issuer_key, rsa.RSAPublicKey):
            params = cert.signature_algorithm_parameters
            issuer_key.verify(cert.signature, cert.tbs_certificate_bytes, params, algorithm)  # type: ignore[arg-type]
        elif isinstance(issuer_key, ec.EllipticCurvePublicKey) and algorithm is not None:
            issuer_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))
        elif isinstance(issuer_key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            issuer_key.verify(cert.signature, cert.tbs_certificate_bytes)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, TypeError, ValueError):
        return False
    return True


def _lint_chain(cert: x509.Certificate, cas: Sequence[x509.Certificate], now: datetime) -> list[Finding]:
    ca = next((c for c in cas if c.subject == cert.issuer), cas[0])
    out: list[Finding] = []
    if ca.subject != cert.issuer:
        out.append(Finding("chain-issuer", Severity.ERROR, f"issuer {cert.issuer.rfc4514_string()!r} is not the "
                           f"CA subject {ca.subject.rfc4514_string()!r}", "RFC 5280 §6.1.3"))
    bc = _ext(ca, x509.BasicConstraints)
    if not (isinstance(bc, x509.BasicConstraints) and bc.ca):
        out.append(Finding("chain-ca-not-ca", Severity.ERROR, "the CA certificate lacks basicConstraints CA=true",
                           "RFC 5280 §4.2.1.9"))
    usage = _ext(ca, x509.KeyUsage)
    if isinstance(usage, x509.KeyUsage) and not usage.key_cert_sign:
        out.append(Finding("chain-ca-key-usage", Severity.ERROR, "the CA certificate's keyUsage lacks keyCertSign",
                           "RFC 5280 §4.2.1.3"))
    if not _signature_verifies(cert, ca.public_key()):
        out.append(Finding("chain-signature", Severity.ERROR, "the signature does not verify with the CA's public "
                           "key: this CA did not issue the certificate", "RFC 5280 §6.1.3"))
    out.extend(_lint_validity(ca, now, timedelta(0), prefix="chain-ca-"))
    return out


def lint_certificate(cert: x509.Certificate, *, now: datetime, host: str | None = None,
                     ca: x509.Certificate | Sequence[x509.Certificate] | None = None, fips: bool = False,
                     purpose: str = "auto", expiry_warning: timedelta = EXPIRY_WARNING) -> list[Finding]:
    """Check ``cert`` against what the phones and RFC 5280/6125 accept; errors first.

    ``purpose`` ``auto`` tells CA, device (clientAuth only) and server certificates apart; a
    ``host`` always means a server check. Raises InvalidNameError for a malformed ``host``,
    ValueError for an unknown ``purpose``.
    """
    now = _utc(now)
    role = _role(cert, purpose, host)
    findings: list[Finding] = []
    try:
        cert.extensions
    except (x509.DuplicateExtension, ValueError) as exc:  # checks that need them then see none
        findings.append(Finding("extensions", Severity.ERROR, f"extensions cannot be parsed: {exc}", "RFC 5280 §4.2"))
    try:
        key_problem = _key_problem(cert.public_key(), fips)
    except (ValueError, UnsupportedAlgorithm):
        key_problem = Finding("key-type", Severity.ERROR, "the public key cannot be read", _SEED_FIPS)
    if key_problem is not None:
        findings.append(key_problem)
    findings += _lint_signature(cert)
    findings += _lint_validity(cert, now, expiry_warning)
    if role == "server":
        findings += _lint_server_names(cert)
    elif role == "device":
        findings += _lint_device(cert)
    if host is not None:
        findings += _lint_host(cert, host)
    cas = [ca] if isinstance(ca, x509.Certificate) else list(ca or ())
    if cas:
        findings += _lint_chain(cert, cas, now)
    return sorted(findings, key=lambda f: f.severity != Severity.ERROR)


def lint_exit_code(findings: Iterable[Finding]) -> int:
    """0 clean, 1 warnings only, 2 any error."""
    severities = {f.severity for f in findings}
    return 2 if Severity.ERROR in severities else 1 if severities else 0


# --------------------------------------------------------------------------- output
_FINGERPRINTS: dict[str, type[hashes.HashAlgorithm]] = {"sha1": hashes.SHA1, "sha256": hashes.SHA256}


def fingerprint(cert: x509.Certificate, algorithm: str = "sha256") -> str:
    """Colon-separated uppercase hex of the DER digest, as the phone's web page shows it
    (SCEP root CA fingerprint, seeds 002/003). Raises ValueError for other algorithms."""
    if algorithm not in _FINGERPRINTS:
        raise ValueError(f"fingerprint algorithm must be sha1 or sha256, not {algorithm!r}")
    return ":".join(f"{b:02X}" for b in cert.fingerprint(_FINGERPRINTS[algorithm]()))


def device_serial_from_certificate(cert: x509.Certificate) -> str | None:
    """The subject serialNumber attribute, else the CN, else None."""
    for oid in (NameOID.SERIAL_NUMBER, NameOID.COMMON_NAME):
        for attr in cert.subject.get_attributes_for_oid(oid):
            value = str(attr.value).strip()
            if value:
                return value
    return None


def to_pkcs12(cert: x509.Certificate, key: PrivateKeyTypes, *, cas: Sequence[x509.Certificate] = (),
              password: bytes | None = None, name: bytes | None = None, legacy: bool = False) -> bytes:
    """A PKCS#12 bundle for the phones' user certificate upload (seeds 002/003).

    ``legacy`` uses PBES1 3DES + SHA-1 MAC for firmware that cannot read AES (PBES2) bundles.
    Raises KeyMismatchError when ``key`` is not ``cert``'s, CertificateError for unusable keys.
    """
    if not key_matches_certificate(key, cert):
        raise KeyMismatchError("the private key does not belong to the certificate (public keys differ)")
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey,
                            ed448.Ed448PrivateKey)):
        raise CertificateError(f"{type(key).__name__} keys cannot go into a PKCS#12 bundle")
    encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
    if password and legacy:
        encryption = (serialization.PrivateFormat.PKCS12.encryption_builder()
                      .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
                      .hmac_hash(hashes.SHA1()).build(password))
    elif password:
        encryption = serialization.BestAvailableEncryption(password)
    label = name if name is not None else (device_serial_from_certificate(cert) or "certificate").encode()
    return pkcs12.serialize_key_and_certificates(label, key, cert, list(cas) or None, encryption)


def pem_bytes(obj: Obj, *, password: bytes | None = None) -> bytes:
    """PEM of a certificate, CSR or private key (PKCS#8, encrypted when ``password`` is given)."""
    if isinstance(obj, (x509.Certificate, x509.CertificateSigningRequest)):
        return obj.public_bytes(serialization.Encoding.PEM)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption())
    return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def write_file(path: str | os.PathLike[str], data: bytes, *, private: bool, force: bool = False) -> Path:
    """Write ``data`` to ``path``: mode 0600 when ``private`` (keys, PKCS#12), else 0644.

    Without ``force`` an existing file (or symlink) is never replaced (O_EXCL); with it the file is
    replaced atomically. Raises OutputExistsError, OSError.
    """
    target = Path(path)
    mode = 0o600 if private else 0o644
    if not force:
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            raise OutputExistsError(f"{target} exists; refusing to overwrite it (use --force)") from None
        with os.fdopen(fd, "wb") as handle:
            if private:
                os.fchmod(handle.fileno(), mode)  # exact 0600 whatever the umask
            handle.write(data)
        return target
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")  # mkstemp: 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            if not private:
                os.fchmod(handle.fileno(), mode)
            handle.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def write_pem(path: str | os.PathLike[str], obj: Obj, *, force: bool = False,
              password: bytes | None = None) -> Path:
    """Write ``obj`` as PEM; private keys get mode 0600. Raises OutputExistsError, OSError."""
    private = not isinstance(obj, (x509.Certificate, x509.CertificateSigningRequest))
    return write_file(path, pem_bytes(obj, password=password), private=private, force=force)
