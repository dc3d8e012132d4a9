"""Issuing: the development CA, server and per-device client certificates, and CSRs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from acs_security.certs.errors import CertificateError, InvalidNameError, KeyMismatchError
from acs_security.certs.keys import SignedKey, generate_key, key_matches_certificate, require_acceptable_key
from acs_security.certs.names import check_serial, check_server_names

#: Default extra SANs of a development server certificate, so loopback tests can use HTTPS.
LOOPBACK_SANS: tuple[str, ...] = ("DNS:localhost", "IP:127.0.0.1", "IP:::1")
# A peer whose clock is a little behind must still accept a certificate issued just now.
_BACKDATE = timedelta(minutes=5)


# --------------------------------------------------------------------------- issuing
def _utc(now: datetime) -> datetime:
    # cryptography reads naive datetimes as UTC; make that explicit for the arithmetic here.
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


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
