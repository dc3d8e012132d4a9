"""Certificate lint against what the phones and RFC 5280/6125 accept, and fingerprints."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID

from acs_security.certs.errors import Finding, InvalidNameError, Severity
from acs_security.certs.issue import _utc
from acs_security.certs.keys import _SEED_FIPS, _key_problem
from acs_security.certs.names import (
    _dns_name,
    _ip,
    common_names,
    device_serial_from_certificate,
    dns_name_matches,
    host_match,
    split_cisco_cn,
    subject_alt_names,
)

EXPIRY_WARNING = timedelta(days=30)

_SEED_CN = "seed 000, HTTPS provisioning: server certificate CN = host FQDN, optionally followed by /..."
_SEED_HASH = "seed 000, Get a Signed Server Certificate: Cisco recommends SHA256 signing"
_SEED_HOST = "seed 000, Enable Hostname Verification: the phone checks SAN and CN; RFC 6125 §6.4"
_SEED_CLIENT = "seed 000, Multiplatform Phone CA Client Root Certificate: per-device client certificate"


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
        _ = cert.extensions  # the property parses them
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


# --------------------------------------------------------------------------- fingerprints
_FINGERPRINTS: dict[str, type[hashes.HashAlgorithm]] = {"sha1": hashes.SHA1, "sha256": hashes.SHA256}


def fingerprint(cert: x509.Certificate, algorithm: str = "sha256") -> str:
    """Colon-separated uppercase hex of the DER digest, as the phone's web page shows it
    (SCEP root CA fingerprint, seeds 002/003). Raises ValueError for other algorithms."""
    if algorithm not in _FINGERPRINTS:
        raise ValueError(f"fingerprint algorithm must be sha1 or sha256, not {algorithm!r}")
    return ":".join(f"{b:02X}" for b in cert.fingerprint(_FINGERPRINTS[algorithm]()))
