"""Reading and writing: PEM/DER loading, PEM and PKCS#12 output, key file modes, no-overwrite."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

from acs_security.certs.errors import (
    CertificateError,
    KeyMismatchError,
    KeyPasswordError,
    NotACertificateError,
    NotAPrivateKeyError,
    OutputExistsError,
)
from acs_security.certs.keys import key_matches_certificate
from acs_security.certs.names import device_serial_from_certificate

Obj = x509.Certificate | x509.CertificateSigningRequest | PrivateKeyTypes


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


# --------------------------------------------------------------------------- output
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
