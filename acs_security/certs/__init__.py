"""Certificate tools for an ACS and the Cisco phones it manages.

Keys and certificate signing requests for provisioning/ACS servers, a development CA with
server and per-device client certificates (mutual TLS with simulated phones), certificate
lint against what the phones accept, fingerprints and PKCS#12 bundles.

Everything here works on ``cryptography`` objects in memory; only :func:`write_file` and
:func:`write_pem` touch the filesystem, and only when called. Time comes in as ``now``.
Key generation and default certificate serial numbers draw from the OS CSPRNG, as
``cryptography`` does (RFC 5280 §4.1.2.2 wants unpredictable serials); pass ``key=`` and
``serial_number=`` for fixed values.

The code lives in submodules (errors, keys, names, issue, files, lint); this package re-exports
their public API, so ``from acs_security import certs`` / ``from acs_security.certs import X`` work.
"""

from __future__ import annotations

from acs_security.certs.errors import (
    CertificateError,
    Finding,
    InvalidNameError,
    KeyMismatchError,
    KeyPasswordError,
    NotACertificateError,
    NotAPrivateKeyError,
    OutputExistsError,
    Severity,
    UnknownKeyTypeError,
    WeakKeyError,
)
from acs_security.certs.files import (
    Obj,
    load_certificate,
    load_certificates,
    load_private_key,
    pem_bytes,
    to_pkcs12,
    write_file,
    write_pem,
)
from acs_security.certs.issue import LOOPBACK_SANS, make_ca, make_csr, make_device_cert, make_server_cert
from acs_security.certs.keys import (
    KEY_TYPES,
    MIN_RSA_BITS,
    SignedKey,
    describe_key,
    generate_key,
    key_matches_certificate,
    require_acceptable_key,
)
from acs_security.certs.lint import EXPIRY_WARNING, fingerprint, lint_certificate, lint_exit_code
from acs_security.certs.names import (
    check_serial,
    check_server_names,
    common_names,
    device_serial_from_certificate,
    device_serials,
    dns_name_matches,
    host_match,
    parse_san,
    split_cisco_cn,
    subject_alt_names,
)

__all__ = [
    "KEY_TYPES", "MIN_RSA_BITS", "EXPIRY_WARNING", "LOOPBACK_SANS", "SignedKey", "Obj",
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
