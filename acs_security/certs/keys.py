"""Key generation, key descriptions and the key checks the phones impose."""

from __future__ import annotations

import re

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from acs_security.certs.errors import Finding, Severity, UnknownKeyTypeError, WeakKeyError

#: Key types this module generates. RSA below 2048 bits is refused: FIPS-mode phones reject
#: such certificates (seeds 002/003, "FIPS mode"), although seed 000's CSR example is 1024-bit.
KEY_TYPES: tuple[str, ...] = ("rsa2048", "rsa3072", "rsa4096", "ec-p256", "ec-p384")
MIN_RSA_BITS = 2048

SignedKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

_SEED_FIPS = "seeds 002/003, FIPS mode: RSA keys of 2048 bits or more"
_EC_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384"}


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
