"""``acs-security certs``: server keys and CSRs, a development PKI, certificate lint,
fingerprints and PKCS#12 bundles.

Every action reads PEM or DER (detected), answers bad input with a precise message and exit
code 2, and writes nothing unless every input was good: outputs are checked for existence
before anything is generated, keys and bundles are written 0600 and never over an existing
file unless ``--force``. The certificate logic itself lives in :mod:`acs_security.certs`.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from acs_security import certs
from acs_security.commands import UsageError

__all__ = ["register", "DeviceCredential", "DevPki", "build_dev_pki", "write_dev_pki", "MAX_INPUT_BYTES"]

#: Certificate, key and password files are small; anything bigger is the wrong file.
MAX_INPUT_BYTES = 1 << 20
_MAX_DEVICES = 10_000


# --------------------------------------------------------------------------- development PKI
@dataclass(frozen=True, slots=True)
class DeviceCredential:
    serial: str
    certificate: x509.Certificate
    key: certs.SignedKey

    def __repr__(self) -> str:  # never print key material
        return f"DeviceCredential(serial={self.serial!r})"


@dataclass(frozen=True, slots=True)
class DevPki:
    ca: x509.Certificate
    ca_key: certs.SignedKey
    server: x509.Certificate
    server_key: certs.SignedKey
    devices: tuple[DeviceCredential, ...]

    def __repr__(self) -> str:
        return f"DevPki(ca={self.ca.subject.rfc4514_string()!r}, devices={len(self.devices)})"


def build_dev_pki(*, now: datetime, serials: Sequence[str] = (), server_cn: str = "localhost",
                  server_sans: Sequence[str] = (), loopback: bool = True, key_type: str = "ec-p256",
                  ca_cn: str = "acs-security development CA", days: int = 365) -> DevPki:
    """A test CA, a server certificate (with :data:`certs.LOOPBACK_SANS` unless ``loopback`` is
    False) and one client certificate per device serial, in memory.

    Raises InvalidNameError (bad or duplicate serial, CN, SAN), UnknownKeyTypeError, WeakKeyError.
    """
    if len(set(serials)) != len(serials):
        raise certs.InvalidNameError("device serials must be unique")
    for serial in serials:
        certs.check_serial(serial)
    extra = [*(certs.LOOPBACK_SANS if loopback else ()), *server_sans]
    certs.check_server_names(server_cn, extra)  # every name is checked before any key is generated
    ca, ca_key = certs.make_ca(ca_cn, now=now, key_type=key_type, days=max(days, 3650),
                               organization="acs-security")
    server, server_key = certs.make_server_cert(ca, ca_key, cn=server_cn, sans=extra, now=now,
                                                key_type=key_type, days=days)
    devices = tuple(DeviceCredential(serial, *certs.make_device_cert(ca, ca_key, serial, now=now,
                                                                     key_type=key_type, days=days))
                    for serial in serials)
    return DevPki(ca, ca_key, server, server_key, devices)


def _dev_pki_files(pki: DevPki) -> dict[str, certs.Obj]:
    files: dict[str, certs.Obj] = {"ca.pem": pki.ca, "ca.key": pki.ca_key,
                                   "server.pem": pki.server, "server.key": pki.server_key}
    for device in pki.devices:
        files[f"devices/{device.serial}.pem"] = device.certificate
        files[f"devices/{device.serial}.key"] = device.key
    return files


def _dev_pki_index(pki: DevPki) -> dict[str, Any]:
    sans = [f"{'IP' if isinstance(n, x509.IPAddress) else 'DNS'}:{n.value}"
            for n in certs.subject_alt_names(pki.server)]
    return {
        "ca": {"cert": "ca.pem", "key": "ca.key", "subject": pki.ca.subject.rfc4514_string(),
               "sha256": certs.fingerprint(pki.ca, "sha256"), "sha1": certs.fingerprint(pki.ca, "sha1")},
        "server": {"cert": "server.pem", "key": "server.key", "cn": certs.common_names(pki.server)[0],
                   "sans": sans},
        "devices": [{"serial": d.serial, "cert": f"devices/{d.serial}.pem", "key": f"devices/{d.serial}.key"}
                    for d in pki.devices],
        "not_after": pki.server.not_valid_after_utc.isoformat(),
    }


def write_dev_pki(pki: DevPki, directory: str | Path, *, force: bool = False) -> dict[str, Any]:
    """Write ``ca.pem``, ``ca.key``, ``server.pem``, ``server.key``, ``devices/<serial>.pem|.key``
    and ``index.json`` under ``directory``; keys 0600. Returns the index.

    Nothing is written when any target exists and ``force`` is False. Raises OutputExistsError, OSError.
    """
    root = Path(directory)
    files = _dev_pki_files(pki)
    if not force:
        existing = [name for name in [*files, "index.json"] if (root / name).exists()]
        if existing:
            raise certs.OutputExistsError(f"{root / existing[0]} exists; refusing to overwrite it (use --force)")
    (root / "devices").mkdir(parents=True, exist_ok=True)
    for name, obj in files.items():
        certs.write_pem(root / name, obj, force=force)
    index = _dev_pki_index(pki)
    certs.write_file(root / "index.json", (json.dumps(index, indent=2) + "\n").encode(), private=False, force=force)
    return index


# --------------------------------------------------------------------------- helpers
def _guard(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn certificate and file errors into UsageError (stderr, exit 2, no traceback)."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except certs.CertificateError as exc:
            raise UsageError(str(exc), exc.exit_code) from None
        except OSError as exc:
            raise UsageError(f"{exc.filename or 'file'}: {exc.strerror or exc}", 2) from None

    return run


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}", 2) from None
    if len(data) > MAX_INPUT_BYTES:
        raise UsageError(f"{what} {path} is larger than {MAX_INPUT_BYTES} bytes: not a certificate or key", 2)
    return data


def _password(path: str | None, what: str = "password file") -> bytes | None:
    if path is None:
        return None
    data = _read(path, what)
    # One trailing newline is the editor's, not the password's.
    password = data[:-2] if data.endswith(b"\r\n") else data[:-1] if data.endswith(b"\n") else data
    if not password:
        raise UsageError(f"{what} {path} is empty", 2)
    return password


def _split(values: Sequence[str] | None) -> list[str]:
    return [item.strip() for value in values or () for item in value.split(",") if item.strip()]


def _refuse_existing(paths: Sequence[str], force: bool) -> None:
    if len({str(Path(p).resolve()) for p in paths}) != len(paths):
        raise UsageError("output files must be different files", 2)
    for path in paths:
        if not force and (Path(path).exists() or Path(path).is_symlink()):
            raise UsageError(f"{path} exists; refusing to overwrite it (use --force)", 2)
        if not Path(path).parent.is_dir():  # found now, not after the first of two files is written
            raise UsageError(f"directory {Path(path).parent} does not exist", 2)


def _now(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)  # the CLI is the edge: the library takes time as an argument
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--at {value!r} is not an ISO 8601 date/time", 2) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


# --------------------------------------------------------------------------- actions
@_guard
def _cmd_csr(args: argparse.Namespace) -> int:
    if (args.in_key is None) == (args.out_key is None):
        raise UsageError("give --out-key FILE for a new key, or --in-key FILE to reuse an existing key", 2)
    outputs = [args.out_csr] + ([args.out_key] if args.out_key else [])
    _refuse_existing(outputs, args.force)
    certs.check_server_names(args.cn, _split(args.san))  # before a key is read or generated
    if args.in_key is not None:
        key = certs.load_private_key(_read(args.in_key, "key"), _password(args.key_password_file))
        certs.require_acceptable_key(key.public_key())
        if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):  # pragma: no cover
            raise certs.WeakKeyError("only RSA and EC keys can sign a CSR here")
    else:
        key = certs.generate_key(args.key)
    csr = certs.make_csr(key, cn=args.cn, sans=_split(args.san))
    if args.out_key:
        certs.write_pem(args.out_key, key, force=args.force)
    certs.write_pem(args.out_csr, csr, force=args.force)
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = ", ".join(str(n.value) for n in san)
    print(f"CSR {args.out_csr}: {csr.subject.rfc4514_string()}, {certs.describe_key(key.public_key())}, SAN {names}")
    if args.out_key:
        print(f"private key {args.out_key} (mode 0600): keep it secret, submit only the CSR")
    return 0


@_guard
def _cmd_dev_ca(args: argparse.Namespace) -> int:
    if args.serial and args.devices is not None:
        raise UsageError("give either --serial or --devices, not both", 2)
    count = 2 if args.devices is None else args.devices
    if not 0 <= count <= _MAX_DEVICES:
        raise UsageError(f"--devices must be between 0 and {_MAX_DEVICES}", 2)
    serials = _split(args.serial) or certs.device_serials(args.serial_prefix, count)
    pki = build_dev_pki(now=_now(None), serials=serials, server_cn=args.server_cn,
                        server_sans=_split(args.server_san), loopback=not args.no_loopback,
                        key_type=args.key, days=args.days)
    index = write_dev_pki(pki, args.out, force=args.force)
    out = Path(args.out)
    print(f"CA {out / 'ca.pem'}: {index['ca']['subject']}, SHA-256 {index['ca']['sha256']}")
    print(f"server {out / 'server.pem'}: CN={index['server']['cn']}, SAN {', '.join(index['server']['sans'])}")
    print(f"{len(pki.devices)} device certificates under {out / 'devices'}; index in {out / 'index.json'}")
    return 0


def _print_findings(findings: Sequence[certs.Finding]) -> None:
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table("severity", "rule", "message", "reference")
        for f in findings:
            table.add_row(f"[{'red' if f.severity is certs.Severity.ERROR else 'yellow'}]{f.severity.value}",
                          f.rule, f.message, f.reference)
        Console().print(table)
        return
    for f in findings:
        print(f"{f.severity.value:<8} {f.rule:<22} {f.message} [{f.reference}]")


@_guard
def _cmd_lint(args: argparse.Namespace) -> int:
    now = _now(args.at)
    chain = certs.load_certificates(_read(args.file, "certificate"))
    cert = chain[0]
    # A bundle file (leaf first, then its issuers) is checked against its own issuers unless --ca is given.
    cas = certs.load_certificates(_read(args.ca, "CA certificate")) if args.ca else chain[1:]
    findings = certs.lint_certificate(cert, now=now, host=args.host, ca=cas or None,
                                      fips=args.fips, purpose=args.purpose)
    code = certs.lint_exit_code(findings)
    errors = sum(f.severity is certs.Severity.ERROR for f in findings)
    if args.json:
        report = {"file": args.file, "subject": cert.subject.rfc4514_string(),
                  "issuer": cert.issuer.rfc4514_string(), "key": certs.describe_key(cert),
                  "not_before": cert.not_valid_before_utc.isoformat(),
                  "not_after": cert.not_valid_after_utc.isoformat(), "sha256": certs.fingerprint(cert),
                  "findings": [f.to_dict() for f in findings], "errors": errors,
                  "warnings": len(findings) - errors, "exit_code": code}
        print(json.dumps(report, indent=2))
        return code
    print(f"{args.file}: {cert.subject.rfc4514_string()}, {certs.describe_key(cert)}, valid "
          f"{cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d}")
    _print_findings(findings)
    print(f"{errors} error(s), {len(findings) - errors} warning(s)" if findings else "no findings")
    return code


@_guard
def _cmd_fingerprint(args: argparse.Namespace) -> int:
    found = certs.load_certificates(_read(args.file, "certificate"))
    for cert in found:
        value = certs.fingerprint(cert, args.algorithm)
        print(value if len(found) == 1 else f"{value}  {cert.subject.rfc4514_string()}")
    return 0


@_guard
def _cmd_p12(args: argparse.Namespace) -> int:
    _refuse_existing([args.out], args.force)
    cert = certs.load_certificate(_read(args.cert, "certificate"))
    key = certs.load_private_key(_read(args.key, "key"), _password(args.key_password_file, "key password file"))
    cas = certs.load_certificates(_read(args.ca, "CA certificate")) if args.ca else []
    password = _password(args.password_file)
    name = args.name.encode() if args.name else None
    bundle = certs.to_pkcs12(cert, key, cas=cas, password=password, name=name, legacy=args.legacy)
    certs.write_file(args.out, bundle, private=True, force=args.force)
    print(f"PKCS#12 {args.out} (mode 0600): {cert.subject.rfc4514_string()}, {len(cas)} CA certificate(s)")
    if password is None:
        print("note: no --password-file, so the bundle is not encrypted; the phone's certificate upload asks "
              "for an extract password (seeds 002/003)", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- argparse
def register(subparsers: Any) -> None:
    """Add ``certs`` and its actions to the ``acs-security`` parser."""
    parser = subparsers.add_parser("certs", help="server CSRs, a development CA, certificate lint, "
                                   "fingerprints, PKCS#12", description="Server keys and CSRs, a development PKI, "
                                   "certificate lint, fingerprints and PKCS#12 bundles (PEM or DER input).")
    actions = parser.add_subparsers(dest="certs_action", metavar="ACTION")
    actions.required = True
    key_help = f"key type: {', '.join(certs.KEY_TYPES)} (RSA below 2048 bits is refused)"

    p = actions.add_parser("csr", help="key and certificate signing request for a provisioning/ACS server")
    p.add_argument("--cn", required=True, help="server FQDN, optionally followed by /... (seed 000)")
    p.add_argument("--san", action="append", help="extra DNS:name or IP:addr (repeat or comma-separate)")
    p.add_argument("--key", default="rsa2048", help=key_help + "; default rsa2048")
    p.add_argument("--in-key", help="reuse this existing private key instead of generating one")
    p.add_argument("--key-password-file", help="file holding the password of --in-key")
    p.add_argument("--out-key", help="where to write the new private key (mode 0600)")
    p.add_argument("--out-csr", required=True, help="where to write the CSR (PEM)")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.set_defaults(func=_cmd_csr)

    p = actions.add_parser("dev-ca", help="test CA, server certificate and device client certificates")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--devices", type=int, help="number of device certificates (default 2)")
    p.add_argument("--serial-prefix", default="SIM", help="device serial prefix; serials are PREFIX000001...")
    p.add_argument("--serial", action="append", help="explicit device serials (repeat or comma-separate)")
    p.add_argument("--server-cn", default="localhost", help="server certificate CN (default localhost)")
    p.add_argument("--server-san", action="append", help="extra server SAN: DNS:name or IP:addr")
    p.add_argument("--no-loopback", action="store_true", help="leave localhost/127.0.0.1/::1 out of the SAN")
    p.add_argument("--key", default="ec-p256", help=key_help + "; default ec-p256")
    p.add_argument("--days", type=int, default=365, help="leaf validity in days (default 365)")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.set_defaults(func=_cmd_dev_ca)

    p = actions.add_parser("lint", help="check a certificate against what the phones accept")
    p.add_argument("file", help="certificate (PEM or DER; a PEM bundle is leaf first)")
    p.add_argument("--host", help="host name or IP address the certificate must match")
    p.add_argument("--ca", help="CA certificate(s) that must have issued it")
    p.add_argument("--fips", action="store_true", help="FIPS-mode phones: RSA below 2048 bits is an error")
    p.add_argument("--purpose", choices=("auto", "server", "device", "ca"), default="auto",
                   help="which checks to run (default: from basicConstraints/extendedKeyUsage)")
    p.add_argument("--at", help="check validity at this ISO 8601 time instead of now")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.set_defaults(func=_cmd_lint)

    p = actions.add_parser("fingerprint", help="SHA-256 or SHA-1 fingerprint, as the phone's web page shows it")
    p.add_argument("file", help="certificate (PEM or DER)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--sha256", dest="algorithm", action="store_const", const="sha256", help="(default)")
    group.add_argument("--sha1", dest="algorithm", action="store_const", const="sha1")
    p.set_defaults(func=_cmd_fingerprint, algorithm="sha256")

    p = actions.add_parser("p12", help="PKCS#12 bundle for the phones' user certificate upload")
    p.add_argument("--cert", required=True, help="certificate (PEM or DER)")
    p.add_argument("--key", required=True, help="its private key (PEM or DER)")
    p.add_argument("--key-password-file", help="file holding the password of an encrypted --key")
    p.add_argument("--ca", help="CA certificate(s) to include")
    p.add_argument("--out", required=True, help="where to write the bundle (mode 0600)")
    p.add_argument("--password-file", help="file holding the bundle's extract password")
    p.add_argument("--name", help="friendly name (default: device serial or CN)")
    p.add_argument("--legacy", action="store_true", help="3DES/SHA-1 encryption for old firmware")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.set_defaults(func=_cmd_p12)
