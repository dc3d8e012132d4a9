"""Certificate tools: the library in memory, then every ``acs-security certs`` action on real files."""

from __future__ import annotations

import hashlib
import json
import ssl
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given
from hypothesis import strategies as st

from acs_security import certs
from acs_security.certs import Severity
from acs_security.cli import main
from acs_security.commands.certs import build_dev_pki, write_dev_pki

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
AT = ["--at", NOW.isoformat()]
PEM, DER = serialization.Encoding.PEM, serialization.Encoding.DER

# sha256WithRSAEncryption, sha1WithRSAEncryption, md5WithRSAEncryption: same length, so the
# DER can be edited in place (cryptography no longer signs certificates with SHA-1 or MD5).
OID_SHA256_RSA = bytes.fromhex("06092a864886f70d01010b")
OID_SHA1_RSA = bytes.fromhex("06092a864886f70d010105")
OID_MD5_RSA = bytes.fromhex("06092a864886f70d010104")
CA = tuple[x509.Certificate, certs.SignedKey]
RsaCA = tuple[x509.Certificate, rsa.RSAPrivateKey]


@pytest.fixture(scope="module")
def rsa_ca() -> RsaCA:
    cert, key = certs.make_ca("Test RSA CA", now=NOW - timedelta(days=30), key_type="rsa2048")
    assert isinstance(key, rsa.RSAPrivateKey)
    return cert, key


@pytest.fixture(scope="module")
def ec_ca() -> CA:
    return certs.make_ca("Test EC CA", now=NOW - timedelta(days=30))


def rules(findings: list[certs.Finding]) -> dict[str, Severity]:
    return {f.rule: f.severity for f in findings}


def resign(cert: x509.Certificate, issuer_key: rsa.RSAPrivateKey, oid: bytes,
           algorithm: hashes.HashAlgorithm) -> x509.Certificate:
    der = cert.public_bytes(DER)
    assert der.count(OID_SHA256_RSA) == 2  # tbsCertificate.signature and signatureAlgorithm
    der = der.replace(OID_SHA256_RSA, oid)
    tbs = x509.load_der_x509_certificate(der).tbs_certificate_bytes
    signature = issuer_key.sign(tbs, padding.PKCS1v15(), algorithm)
    assert der.count(cert.signature) == 1 and len(signature) == len(cert.signature)
    return x509.load_der_x509_certificate(der.replace(cert.signature, signature))


def bare_cert(subject: x509.Name, *, now: datetime = NOW) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed certificate without any extension (no SAN, no EKU)."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(7).not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=90))
            .sign(key, hashes.SHA256()))
    return cert, key


def cn_name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --------------------------------------------------------------------------- keys and issuing
def test_generate_key_refuses_weak_and_unknown_types() -> None:
    with pytest.raises(certs.WeakKeyError, match="2048"):
        certs.generate_key("rsa1024")
    with pytest.raises(certs.UnknownKeyTypeError, match="ec-p256"):
        certs.generate_key("dsa2048")
    key = certs.generate_key("ec-p384")
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1"


def test_dev_pki_certificates_lint_clean_and_carry_the_serial(ec_ca: CA) -> None:
    ca, _ = ec_ca
    pki = build_dev_pki(now=NOW, serials=["FCH2145ABCD", "SIM000002"])
    assert certs.lint_certificate(pki.ca, now=NOW) == []
    assert certs.lint_certificate(pki.server, now=NOW, ca=pki.ca, host="127.0.0.1") == []
    assert certs.lint_certificate(pki.server, now=NOW, ca=pki.ca, host="localhost") == []
    assert certs.lint_certificate(pki.server, now=NOW, ca=pki.ca, host="::1") == []
    device = pki.devices[0].certificate
    assert certs.lint_certificate(device, now=NOW, ca=pki.ca) == []
    assert device.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == "FCH2145ABCD"
    assert device.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "FCH2145ABCD"
    assert certs.device_serial_from_certificate(device) == "FCH2145ABCD"
    eku = device.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    # Signed by the dev CA, not by the unrelated module CA.
    assert "chain-signature" in rules(certs.lint_certificate(device, now=NOW, ca=ca))
    assert "FCH2145ABCD" in repr(pki.devices[0]) and "PRIVATE" not in repr(pki.devices[0])


def test_dev_pki_refuses_bad_names_before_generating(ec_ca: CA) -> None:
    with pytest.raises(certs.InvalidNameError, match="unique"):
        build_dev_pki(now=NOW, serials=["A1", "A1"])
    with pytest.raises(certs.InvalidNameError, match="serial"):
        build_dev_pki(now=NOW, serials=["../etc/passwd"])
    with pytest.raises(certs.InvalidNameError, match="SAN"):
        build_dev_pki(now=NOW, server_sans=["IP:300.1.1.1"])
    assert certs.device_serials("SIM", 2) == ["SIM000001", "SIM000002"]


def test_device_serial_falls_back_to_cn_then_none() -> None:
    assert certs.device_serial_from_certificate(bare_cert(cn_name("PHONE-7"))[0]) == "PHONE-7"
    org_only = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Telco")])
    assert certs.device_serial_from_certificate(bare_cert(org_only)[0]) is None


def test_make_server_cert_refuses_a_ca_key_that_is_not_the_cas(ec_ca: CA, rsa_ca: RsaCA) -> None:
    with pytest.raises(certs.KeyMismatchError):
        certs.make_server_cert(ec_ca[0], rsa_ca[1], cn="acs.telco.net", now=NOW)
    with pytest.raises(certs.InvalidNameError):
        certs.make_server_cert(*ec_ca, cn="bad host!", now=NOW)


def test_make_csr_carries_cn_san_and_sha256(ec_ca: CA) -> None:
    key = certs.generate_key("ec-p256")
    csr = certs.make_csr(key, cn="pv.telco.net/mailto:admin@telco.net", sans=["IP:192.0.2.7", "DNS:pv2.telco.net"])
    assert csr.is_signature_valid
    assert isinstance(csr.signature_hash_algorithm, hashes.SHA256)
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "pv.telco.net/mailto:admin@telco.net"
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(n.value) for n in san] == ["pv.telco.net", "192.0.2.7", "pv2.telco.net"]
    weak = rsa.generate_private_key(65537, 1024)
    with pytest.raises(certs.WeakKeyError, match="2048"):
        certs.make_csr(weak, cn="pv.telco.net")
    for bad in ("", "under_score.example", "-x.example", "a" * 65):
        with pytest.raises(certs.InvalidNameError):
            certs.make_csr(key, cn=bad)


def test_parse_san() -> None:
    assert certs.parse_san("DNS:Acs.Telco.NET.") == x509.DNSName("acs.telco.net")
    assert certs.parse_san("IP:::1") == x509.IPAddress(__import__("ipaddress").ip_address("::1"))
    assert certs.parse_san("10.0.0.1") == x509.IPAddress(__import__("ipaddress").ip_address("10.0.0.1"))
    assert certs.parse_san("*.telco.net") == x509.DNSName("*.telco.net")
    for bad in ("IP:nope", "DNS:*.net", "DNS:a..b", "bücher.example", "DNS:f*.telco.net"):
        with pytest.raises(certs.InvalidNameError):
            certs.parse_san(bad)


# --------------------------------------------------------------------------- lint
def test_lint_rsa_1024_is_a_fips_error_and_otherwise_a_warning(rsa_ca: RsaCA) -> None:
    weak = rsa.generate_private_key(65537, 1024)
    cert, _ = certs.make_server_cert(*rsa_ca, cn="pv.telco.net", now=NOW, key=weak)
    assert rules(certs.lint_certificate(cert, now=NOW, fips=True)) == {"key-size": Severity.ERROR}
    assert rules(certs.lint_certificate(cert, now=NOW)) == {"key-size": Severity.WARNING}
    finding = certs.lint_certificate(cert, now=NOW, fips=True)[0]
    assert "1024" in finding.message and "002/003" in finding.reference


def test_lint_sha1_and_md5_signatures_are_errors(rsa_ca: RsaCA) -> None:
    good, _ = certs.make_server_cert(*rsa_ca, cn="pv.telco.net", now=NOW)
    sha1 = resign(good, rsa_ca[1], OID_SHA1_RSA, hashes.SHA1())
    assert isinstance(sha1.signature_hash_algorithm, hashes.SHA1)
    # The chain still verifies (by hand): the only finding is the hash itself.
    assert rules(certs.lint_certificate(sha1, now=NOW, ca=rsa_ca[0])) == {"signature-hash": Severity.ERROR}
    md5 = resign(good, rsa_ca[1], OID_MD5_RSA, hashes.MD5())
    findings = certs.lint_certificate(md5, now=NOW)
    assert rules(findings) == {"signature-hash": Severity.ERROR}
    assert "MD5" in findings[0].message and "seed 000" in findings[0].reference


def test_lint_validity_dates(ec_ca: CA) -> None:
    old, _ = certs.make_server_cert(*ec_ca, cn="acs.telco.net", now=NOW - timedelta(days=800), days=365)
    assert rules(certs.lint_certificate(old, now=NOW)) == {"expired": Severity.ERROR}
    future, _ = certs.make_server_cert(*ec_ca, cn="acs.telco.net", now=NOW + timedelta(days=3))
    assert rules(certs.lint_certificate(future, now=NOW)) == {"not-yet-valid": Severity.ERROR}
    soon, _ = certs.make_server_cert(*ec_ca, cn="acs.telco.net", now=NOW - timedelta(days=350), days=365)
    assert rules(certs.lint_certificate(soon, now=NOW)) == {"expiring-soon": Severity.WARNING}
    # A naive `now` is read as UTC.
    assert rules(certs.lint_certificate(old, now=NOW.replace(tzinfo=None))) == {"expired": Severity.ERROR}


def test_lint_cisco_cn_form_is_accepted_for_its_host(ec_ca: CA) -> None:
    cn = "pv.telco.net/mailto:admin@telco.net"
    with_san, _ = certs.make_server_cert(*ec_ca, cn=cn, now=NOW)
    assert certs.lint_certificate(with_san, now=NOW, host="pv.telco.net", ca=ec_ca[0]) == []
    # Without any SAN the phones match the CN host part (seed 000); only the missing SAN is noted.
    cn_only, _ = bare_cert(cn_name(cn))
    assert certs.host_match(cn_only, "pv.telco.net") == "cn"
    assert rules(certs.lint_certificate(cn_only, now=NOW, host="pv.telco.net")) == {
        "san-missing": Severity.WARNING, "cn-suffix-needs-san": Severity.WARNING}
    assert certs.lint_exit_code(certs.lint_certificate(cn_only, now=NOW, host="pv.telco.net")) == 1


def test_lint_server_cn_forms() -> None:
    assert rules(certs.lint_certificate(bare_cert(cn_name("not a host"))[0], now=NOW))["cn-form"] is Severity.ERROR
    assert rules(certs.lint_certificate(bare_cert(cn_name("acsbox"))[0], now=NOW))["cn-form"] is Severity.WARNING
    org_only = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Telco")])
    assert rules(certs.lint_certificate(bare_cert(org_only)[0], now=NOW))["cn-missing"] is Severity.ERROR


def test_lint_host_mismatch_and_matching_rules(ec_ca: CA) -> None:
    cert, _ = certs.make_server_cert(*ec_ca, cn="acs.telco.net", sans=["DNS:*.prov.telco.net", "IP:192.0.2.10"],
                                     now=NOW)
    findings = certs.lint_certificate(cert, now=NOW, host="evil.example.com")
    assert rules(findings) == {"host-mismatch": Severity.ERROR}
    assert "(acs.telco.net, *.prov.telco.net, 192.0.2.10)" in findings[0].message  # each name once
    assert certs.lint_exit_code(findings) == 2
    assert certs.host_match(cert, "ACS.telco.net.") == "san"
    assert certs.host_match(cert, "a.prov.telco.net") == "san"
    assert certs.host_match(cert, "a.b.prov.telco.net") is None  # one label only (RFC 6125 §6.4.3)
    assert certs.host_match(cert, "prov.telco.net") is None
    assert certs.host_match(cert, "192.0.2.10") == "san"
    assert certs.host_match(cert, "192.0.2.11") is None
    with pytest.raises(certs.InvalidNameError):
        certs.lint_certificate(cert, now=NOW, host="bad host")


def test_host_matching_only_the_cn_when_a_san_exists_is_a_warning(ec_ca: CA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = cn_name("acs.telco.net")
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(9).not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("other.telco.net")]), critical=False)
            .sign(key, hashes.SHA256()))
    assert rules(certs.lint_certificate(cert, now=NOW, host="acs.telco.net")) == {"host-cn-only": Severity.WARNING}


@pytest.mark.parametrize(("presented", "reference", "expected"), [
    ("acs.telco.net", "ACS.Telco.Net", True),
    ("*.telco.net", "acs.telco.net", True),
    ("*.telco.net", "telco.net", False),
    ("*.telco.net", "a.acs.telco.net", False),
    ("*.net", "telco.net", False),
    ("a*.telco.net", "acs.telco.net", False),
    ("acs.*.net", "acs.telco.net", False),
    ("*.telco.net", ".telco.net", False),
])
def test_dns_name_matches(presented: str, reference: str, expected: bool) -> None:
    assert certs.dns_name_matches(presented, reference) is expected


label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


@given(st.lists(label, min_size=1, max_size=4), label, label)
def test_wildcard_matches_exactly_one_left_label(parent: list[str], left: str, extra: str) -> None:
    domain = ".".join(parent)
    assert certs.dns_name_matches(f"*.{domain}", f"{left}.{domain}") is (len(parent) >= 2)
    assert not certs.dns_name_matches(f"*.{domain}", f"{extra}.{left}.{domain}")
    assert certs.dns_name_matches(domain, domain.upper())


def test_lint_wrong_chain(ec_ca: CA, rsa_ca: RsaCA) -> None:
    cert, _ = certs.make_server_cert(*ec_ca, cn="acs.telco.net", now=NOW)
    assert certs.lint_certificate(cert, now=NOW, ca=ec_ca[0]) == []
    # Another CA with a different name: neither the issuer name nor the signature fits.
    assert rules(certs.lint_certificate(cert, now=NOW, ca=rsa_ca[0])) == {
        "chain-issuer": Severity.ERROR, "chain-signature": Severity.ERROR}
    # An impostor CA with the same name but another key: only the signature tells.
    impostor, _ = certs.make_ca("Test EC CA", now=NOW - timedelta(days=1))
    assert rules(certs.lint_certificate(cert, now=NOW, ca=impostor)) == {"chain-signature": Severity.ERROR}
    # A bundle: the CA whose subject is the issuer is picked.
    assert certs.lint_certificate(cert, now=NOW, ca=[rsa_ca[0], ec_ca[0]]) == []
    # A leaf used as the "CA": issuer name differs, no CA=true, no keyCertSign, bad signature.
    assert set(rules(certs.lint_certificate(cert, now=NOW, ca=cert))) == {
        "chain-issuer", "chain-ca-not-ca", "chain-ca-key-usage", "chain-signature"}
    # An expired CA.
    old_ca, old_key = certs.make_ca("Old CA", now=NOW - timedelta(days=400), days=365)
    leaf, _ = certs.make_server_cert(old_ca, old_key, cn="acs.telco.net", now=NOW - timedelta(days=10))
    assert rules(certs.lint_certificate(leaf, now=NOW, ca=old_ca)) == {"chain-ca-expired": Severity.ERROR}


def test_lint_other_keys_and_purposes(ec_ca: CA) -> None:
    p521 = ec.generate_private_key(ec.SECP521R1())
    cert, _ = certs.make_server_cert(*ec_ca, cn="acs.telco.net", now=NOW, key=p521)
    assert rules(certs.lint_certificate(cert, now=NOW)) == {"key-curve": Severity.ERROR}
    device, _ = certs.make_device_cert(*ec_ca, "SIM000001", now=NOW)
    assert certs.lint_certificate(device, now=NOW) == []  # auto: a device certificate
    assert rules(certs.lint_certificate(device, now=NOW, purpose="server"))["eku-server"] is Severity.ERROR
    server, _ = certs.make_server_cert(*ec_ca, cn="acs.telco.net", now=NOW)
    assert rules(certs.lint_certificate(server, now=NOW, purpose="device")) == {"eku-client": Severity.ERROR}
    org_only = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Telco")])
    anonymous = bare_cert(org_only)[0]
    assert rules(certs.lint_certificate(anonymous, now=NOW, purpose="device")) == {"device-serial": Severity.WARNING}
    with pytest.raises(ValueError, match="purpose"):
        certs.lint_certificate(device, now=NOW, purpose="printer")
    assert certs.lint_exit_code([]) == 0


# --------------------------------------------------------------------------- loading, fingerprints, PKCS#12
def test_load_certificate_pem_der_and_bad_input(ec_ca: CA) -> None:
    ca, key = ec_ca
    assert certs.load_certificate(ca.public_bytes(PEM)) == ca
    assert certs.load_certificate(ca.public_bytes(DER)) == ca
    leaf, _ = certs.make_device_cert(ca, key, "SIM000009", now=NOW)
    assert certs.load_certificates(leaf.public_bytes(PEM) + ca.public_bytes(PEM)) == [leaf, ca]
    key_pem = certs.pem_bytes(key)
    key_der = key.private_bytes(DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    cases = {b"": "empty", b"\x00\x01garbage": "neither", key_pem: "PRIVATE KEY, not a CERTIFICATE",
             key_der: "private key, not a certificate",
             ca.public_bytes(PEM).replace(b"M", b"!", 3): "not a valid X.509"}
    for data, message in cases.items():
        with pytest.raises(certs.NotACertificateError, match=message):
            certs.load_certificate(data)


def test_load_private_key_passwords_never_leak(ec_ca: CA) -> None:
    _, key = ec_ca
    secret = b"s3cret-Extract"
    enc_pem = certs.pem_bytes(key, password=secret)
    enc_der = key.private_bytes(DER, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(secret))
    for data in (enc_pem, enc_der):
        assert certs.key_matches_certificate(certs.load_private_key(data, secret), ec_ca[0])
        with pytest.raises(certs.KeyPasswordError, match="password is needed"):
            certs.load_private_key(data)
        with pytest.raises(certs.KeyPasswordError, match="wrong password") as info:
            certs.load_private_key(data, b"guess")
        assert "guess" not in str(info.value) and "s3cret" not in str(info.value)
    # A password given for a plain key is not needed, and not an error.
    assert certs.key_matches_certificate(certs.load_private_key(certs.pem_bytes(key), b"x"), ec_ca[0])
    with pytest.raises(certs.NotAPrivateKeyError, match="CERTIFICATE, not a PRIVATE KEY"):
        certs.load_private_key(ec_ca[0].public_bytes(PEM))
    with pytest.raises(certs.NotAPrivateKeyError):
        certs.load_private_key(ec_ca[0].public_bytes(DER))


def test_fingerprint_is_the_der_digest_in_uppercase_colon_hex(ec_ca: CA) -> None:
    der = ec_ca[0].public_bytes(DER)
    for algorithm, digest in (("sha256", hashlib.sha256(der)), ("sha1", hashlib.sha1(der))):
        value = certs.fingerprint(ec_ca[0], algorithm)
        assert value.replace(":", "").lower() == digest.hexdigest()
        assert value == value.upper() and len(value.split(":")) == digest.digest_size
    with pytest.raises(ValueError):
        certs.fingerprint(ec_ca[0], "md5")


def test_pkcs12_round_trip_and_mismatch(ec_ca: CA) -> None:
    ca, ca_key = ec_ca
    cert, key = certs.make_device_cert(ca, ca_key, "SIM000001", now=NOW)
    for legacy in (False, True):
        bundle = certs.to_pkcs12(cert, key, cas=[ca], password=b"extract", legacy=legacy)
        loaded = pkcs12.load_pkcs12(bundle, b"extract")
        assert loaded.cert is not None and loaded.cert.certificate == cert
        assert loaded.cert.friendly_name == b"SIM000001"
        assert [c.certificate for c in loaded.additional_certs] == [ca]
        assert loaded.key is not None and certs.key_matches_certificate(loaded.key, cert)
        with pytest.raises(ValueError):
            pkcs12.load_pkcs12(bundle, b"wrong")
    with pytest.raises(certs.KeyMismatchError):
        certs.to_pkcs12(cert, ca_key, password=b"extract")


def test_write_file_modes_and_no_overwrite(tmp_path: Path, ec_ca: CA) -> None:
    key_path = certs.write_pem(tmp_path / "k.pem", ec_ca[1])
    assert mode(key_path) == 0o600
    cert_path = certs.write_pem(tmp_path / "c.pem", ec_ca[0])
    assert mode(cert_path) & 0o077 in (0o044, 0o000)  # readable by others unless the umask says no
    with pytest.raises(certs.OutputExistsError, match="--force"):
        certs.write_file(key_path, b"other", private=True)
    assert key_path.read_bytes() == certs.pem_bytes(ec_ca[1])
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(certs.OutputExistsError):
        certs.write_file(tmp_path / "link", b"x", private=True)
    assert not (tmp_path / "elsewhere").exists()
    certs.write_file(cert_path, b"replaced", private=True, force=True)
    assert cert_path.read_bytes() == b"replaced" and mode(cert_path) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pem", "k.pem", "link"]


# --------------------------------------------------------------------------- CLI
def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main(["certs", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_csr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_file, csr_file = tmp_path / "prov.key", tmp_path / "prov.csr"
    code, out, _ = run(capsys, "csr", "--cn", "pv.telco.net/mailto:admin@telco.net", "--san", "IP:192.0.2.5",
                       "--key", "ec-p256", "--out-key", key_file, "--out-csr", csr_file)
    assert code == 0 and "0600" in out
    assert mode(key_file) == 0o600
    csr = x509.load_pem_x509_csr(csr_file.read_bytes())
    key = certs.load_private_key(key_file.read_bytes())
    assert csr.is_signature_valid and csr.public_key() == key.public_key()
    # Refuse to overwrite: nothing changes, not even the CSR that does not exist yet.
    before = key_file.read_bytes()
    code, _, err = run(capsys, "csr", "--cn", "pv.telco.net", "--out-key", key_file, "--out-csr", tmp_path / "n.csr")
    assert code == 2 and "refusing to overwrite" in err
    assert key_file.read_bytes() == before and not (tmp_path / "n.csr").exists()
    # Reuse the key for a renewal.
    code, _, _ = run(capsys, "csr", "--cn", "pv.telco.net", "--in-key", key_file, "--out-csr", tmp_path / "r.csr")
    assert code == 0
    assert x509.load_pem_x509_csr((tmp_path / "r.csr").read_bytes()).public_key() == key.public_key()
    code, _, _ = run(capsys, "csr", "--cn", "pv.telco.net", "--key", "ec-p256", "--out-key", key_file,
                     "--out-csr", csr_file, "--force")
    assert code == 0 and key_file.read_bytes() != before and mode(key_file) == 0o600


def test_cli_csr_bad_input_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out: list[str | Path] = ["--out-key", tmp_path / "k", "--out-csr", tmp_path / "c"]
    for argv, message in ((["--cn", "pv.telco.net", "--key", "rsa1024"], "2048"),
                          (["--cn", "not a host"], "not a valid DNS host name"),
                          (["--cn", "pv.telco.net", "--san", "IP:999.1.1.1"], "not an IP address")):
        code, _, err = run(capsys, "csr", *argv, *out)
        assert code == 2 and message in err
    weak = rsa.generate_private_key(65537, 1024)
    (tmp_path / "weak.key").write_bytes(certs.pem_bytes(weak))
    code, _, err = run(capsys, "csr", "--cn", "pv.telco.net", "--in-key", tmp_path / "weak.key",
                       "--out-csr", tmp_path / "c")
    assert code == 2 and "1024" in err
    code, _, err = run(capsys, "csr", "--cn", "pv.telco.net", "--out-csr", tmp_path / "c")
    assert code == 2 and "--out-key" in err
    code, _, err = run(capsys, "csr", "--cn", "pv.telco.net", "--out-key", tmp_path / "k", "--out-csr",
                       tmp_path / "missing" / "c")
    assert code == 2 and "does not exist" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weak.key"]


def test_cli_dev_ca(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pki"
    code, stdout, _ = run(capsys, "dev-ca", "--out", out, "--devices", "3", "--serial-prefix", "FCH",
                          "--server-cn", "acs.test.example", "--server-san", "DNS:acs2.test.example")
    assert code == 0 and "SHA-256" in stdout
    index = json.loads((out / "index.json").read_text())
    serials = [d["serial"] for d in index["devices"]]
    assert serials == ["FCH000001", "FCH000002", "FCH000003"]
    assert index["server"]["sans"] == ["DNS:acs.test.example", "DNS:localhost", "IP:127.0.0.1", "IP:::1",
                                       "DNS:acs2.test.example"]
    for name in ("ca.key", "server.key", *(f"devices/{s}.key" for s in serials)):
        assert mode(out / name) == 0o600, name
    ca = certs.load_certificate((out / "ca.pem").read_bytes())
    assert index["ca"]["sha256"] == certs.fingerprint(ca)
    for entry in index["devices"]:
        cert = certs.load_certificate((out / entry["cert"]).read_bytes())
        key = certs.load_private_key((out / entry["key"]).read_bytes())
        assert certs.key_matches_certificate(key, cert)
        assert certs.device_serial_from_certificate(cert) == entry["serial"]
        assert run(capsys, "lint", out / entry["cert"], "--ca", out / "ca.pem")[0] == 0
    assert run(capsys, "lint", out / "server.pem", "--ca", out / "ca.pem", "--host", "127.0.0.1")[0] == 0
    # Second run refuses, and changes nothing.
    before = (out / "ca.key").read_bytes()
    code, _, err = run(capsys, "dev-ca", "--out", out)
    assert code == 2 and "refusing to overwrite" in err and (out / "ca.key").read_bytes() == before
    code, _, _ = run(capsys, "dev-ca", "--out", out, "--serial", "PHONE-1,PHONE-2", "--no-loopback", "--force")
    assert code == 0 and (out / "ca.key").read_bytes() != before
    index = json.loads((out / "index.json").read_text())
    assert [d["serial"] for d in index["devices"]] == ["PHONE-1", "PHONE-2"]
    assert index["server"]["sans"] == ["DNS:localhost"]


def test_cli_dev_ca_bad_input_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv, message in ((["--serial", "a/b"], "device serial"), (["--key", "rsa512"], "2048"),
                          (["--server-san", "DNS:bad_name"], "not a valid DNS host name"),
                          (["--devices", "-1"], "between"), (["--devices", "2", "--serial", "X1"], "not both")):
        code, _, err = run(capsys, "dev-ca", "--out", tmp_path / "pki", *argv)
        assert code == 2 and message in err, argv
    assert list(tmp_path.iterdir()) == []


def test_cli_lint_findings_exit_codes_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               rsa_ca: RsaCA, ec_ca: CA) -> None:
    (tmp_path / "ca.der").write_bytes(ec_ca[0].public_bytes(DER))
    good, _ = certs.make_server_cert(*ec_ca, cn="pv.telco.net/mailto:admin@telco.net", now=NOW)
    (tmp_path / "good.der").write_bytes(good.public_bytes(DER))
    code, out, _ = run(capsys, "lint", tmp_path / "good.der", "--ca", tmp_path / "ca.der", "--host",
                       "pv.telco.net", *AT)
    assert code == 0 and "no findings" in out
    code, out, _ = run(capsys, "lint", tmp_path / "good.der", "--host", "other.telco.net", *AT)
    assert code == 2 and "host-mismatch" in out
    soon, _ = certs.make_server_cert(*ec_ca, cn="acs.telco.net", now=NOW - timedelta(days=350))
    (tmp_path / "soon.pem").write_bytes(soon.public_bytes(PEM))
    code, out, _ = run(capsys, "lint", tmp_path / "soon.pem", *AT, "--json")
    report = json.loads(out)
    assert code == 1 and report["exit_code"] == 1 and report["warnings"] == 1
    assert report["findings"][0]["rule"] == "expiring-soon" and report["findings"][0]["severity"] == "warning"
    expired, _ = certs.make_server_cert(*ec_ca, cn="acs.telco.net", now=datetime(2020, 1, 1, tzinfo=UTC))
    (tmp_path / "expired.pem").write_bytes(expired.public_bytes(PEM))
    code, out, _ = run(capsys, "lint", tmp_path / "expired.pem")  # real time: expired long ago
    assert code == 2 and "expired" in out
    weak, _ = certs.make_server_cert(*rsa_ca, cn="acs.telco.net", now=NOW,
                                     key=rsa.generate_private_key(65537, 1024))
    (tmp_path / "weak.pem").write_bytes(weak.public_bytes(PEM) + rsa_ca[0].public_bytes(PEM))
    assert run(capsys, "lint", tmp_path / "weak.pem", *AT)[0] == 1
    code, out, _ = run(capsys, "lint", tmp_path / "weak.pem", "--fips", *AT, "--json")
    assert code == 2 and [f["rule"] for f in json.loads(out)["findings"]] == ["key-size"]
    # The bundle's second certificate is the issuer; against another CA the chain fails.
    code, out, _ = run(capsys, "lint", tmp_path / "weak.pem", "--ca", tmp_path / "ca.der", *AT)
    assert code == 2 and "chain-signature" in out and "chain-issuer" in out
    sha1 = resign(certs.make_server_cert(*rsa_ca, cn="acs.telco.net", now=NOW)[0], rsa_ca[1], OID_SHA1_RSA,
                  hashes.SHA1())
    (tmp_path / "sha1.pem").write_bytes(sha1.public_bytes(PEM))
    code, out, _ = run(capsys, "lint", tmp_path / "sha1.pem", *AT)
    assert code == 2 and "signature-hash" in out and "SHA1" in out


def test_lint_unparsable_extensions_is_a_finding_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                 ec_ca: CA) -> None:
    der = ec_ca[0].public_bytes(DER)
    aki, ski = bytes.fromhex("0603551d23"), bytes.fromhex("0603551d0e")  # same length OIDs
    assert der.count(aki) == 1
    duplicate = x509.load_der_x509_certificate(der.replace(aki, ski))  # two subjectKeyIdentifier
    assert rules(certs.lint_certificate(duplicate, now=NOW))["extensions"] is Severity.ERROR
    (tmp_path / "dup.der").write_bytes(duplicate.public_bytes(DER))
    code, out, _ = run(capsys, "lint", tmp_path / "dup.der", *AT)
    assert code == 2 and "Duplicate" in out


def test_cli_lint_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "junk").write_bytes(b"hello")
    (tmp_path / "big").write_bytes(b"0" * (2 << 20))
    for argv, message in (([tmp_path / "junk"], "neither"), ([tmp_path / "missing"], "cannot read"),
                          ([tmp_path / "big"], "larger than"), ([tmp_path / "junk", "--at", "soon"], "ISO 8601")):
        code, _, err = run(capsys, "lint", *argv)
        assert code == 2 and message in err


def test_cli_fingerprint(tmp_path: Path, capsys: pytest.CaptureFixture[str], ec_ca: CA, rsa_ca: RsaCA) -> None:
    der = ec_ca[0].public_bytes(DER)
    (tmp_path / "ca.der").write_bytes(der)
    (tmp_path / "ca.pem").write_bytes(ec_ca[0].public_bytes(PEM))
    expected = ":".join(f"{b:02X}" for b in bytes.fromhex(hashlib.sha256(der).hexdigest()))
    for name in ("ca.der", "ca.pem"):
        code, out, _ = run(capsys, "fingerprint", tmp_path / name)
        assert code == 0 and out.strip() == expected
    code, out, _ = run(capsys, "fingerprint", tmp_path / "ca.der", "--sha1")
    assert out.strip().replace(":", "").lower() == hashlib.sha1(der).hexdigest()
    (tmp_path / "both.pem").write_bytes(ec_ca[0].public_bytes(PEM) + rsa_ca[0].public_bytes(PEM))
    lines = run(capsys, "fingerprint", tmp_path / "both.pem")[1].splitlines()
    assert len(lines) == 2 and lines[0].startswith(expected) and "Test RSA CA" in lines[1]


def test_cli_p12(tmp_path: Path, capsys: pytest.CaptureFixture[str], ec_ca: CA) -> None:
    ca, ca_key = ec_ca
    cert, key = certs.make_device_cert(ca, ca_key, "SIM000042", now=NOW)
    (tmp_path / "dev.der").write_bytes(cert.public_bytes(DER))
    (tmp_path / "dev.key").write_bytes(certs.pem_bytes(key, password=b"keypass"))
    (tmp_path / "keypass").write_bytes(b"keypass\n")
    (tmp_path / "extract").write_bytes(b"Extract-Me\r\n")
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(PEM))
    base: list[str | Path] = ["p12", "--cert", tmp_path / "dev.der", "--key", tmp_path / "dev.key",
                              "--key-password-file", tmp_path / "keypass", "--ca", tmp_path / "ca.pem",
                              "--password-file", tmp_path / "extract"]
    code, _, err = run(capsys, *base, "--out", tmp_path / "dev.p12")
    assert code == 0 and err == ""
    assert mode(tmp_path / "dev.p12") == 0o600
    loaded = pkcs12.load_pkcs12((tmp_path / "dev.p12").read_bytes(), b"Extract-Me")
    assert loaded.cert is not None and loaded.cert.certificate == cert
    assert loaded.key is not None and certs.key_matches_certificate(loaded.key, cert)
    assert [c.certificate for c in loaded.additional_certs] == [ca]
    # Exists -> refused, unchanged.
    before = (tmp_path / "dev.p12").read_bytes()
    assert run(capsys, *base, "--out", tmp_path / "dev.p12")[0] == 2
    assert (tmp_path / "dev.p12").read_bytes() == before
    # No extract password: written unencrypted, with a note.
    code, _, err = run(capsys, "p12", "--cert", tmp_path / "dev.der", "--key", tmp_path / "dev.key",
                       "--key-password-file", tmp_path / "keypass", "--out", tmp_path / "open.p12")
    assert code == 0 and "not encrypted" in err
    assert pkcs12.load_pkcs12((tmp_path / "open.p12").read_bytes(), None).cert is not None


def test_cli_p12_bad_input_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str], ec_ca: CA) -> None:
    ca, ca_key = ec_ca
    cert, key = certs.make_device_cert(ca, ca_key, "SIM000042", now=NOW)
    (tmp_path / "dev.pem").write_bytes(cert.public_bytes(PEM))
    (tmp_path / "dev.key").write_bytes(certs.pem_bytes(key, password=b"keypass"))
    (tmp_path / "ca.key").write_bytes(certs.pem_bytes(ca_key))
    (tmp_path / "wrong").write_bytes(b"Guess-Password\n")
    (tmp_path / "empty").write_bytes(b"\n")
    cases: list[tuple[list[str | Path], str]] = [
        (["--cert", tmp_path / "ca.key", "--key", tmp_path / "ca.key"], "not a CERTIFICATE"),
        (["--cert", tmp_path / "dev.pem", "--key", tmp_path / "ca.key"], "does not belong"),
        (["--cert", tmp_path / "dev.pem", "--key", tmp_path / "dev.key"], "password is needed"),
        (["--cert", tmp_path / "dev.pem", "--key", tmp_path / "dev.key", "--key-password-file", tmp_path / "wrong"],
         "wrong password"),
        (["--cert", tmp_path / "dev.pem", "--key", tmp_path / "ca.key", "--password-file", tmp_path / "empty"],
         "is empty"),
    ]
    for argv, message in cases:
        code, out, err = run(capsys, "p12", *argv, "--out", tmp_path / "out.p12")
        assert code == 2 and message in err, (argv, err)
        assert "Guess-Password" not in err + out and "keypass" not in err + out
    assert not (tmp_path / "out.p12").exists()


def test_dev_pki_gives_a_working_mutual_tls_handshake_in_memory(tmp_path: Path) -> None:
    """The dev-ca files, loaded by Python's ssl (OpenSSL), verify both ways: hostname and
    client certificate. Memory BIOs carry the handshake, so no socket is opened."""
    pki = build_dev_pki(now=datetime.now(UTC), serials=["SIM000001"])
    write_dev_pki(pki, tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    server_ctx.load_verify_locations(tmp_path / "ca.pem")
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    for host in ("localhost", "127.0.0.1"):
        client_ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        client_ctx.load_cert_chain(tmp_path / "devices/SIM000001.pem", tmp_path / "devices/SIM000001.key")
        bios = [ssl.MemoryBIO() for _ in range(4)]
        client = client_ctx.wrap_bio(bios[0], bios[1], server_hostname=host)
        server = server_ctx.wrap_bio(bios[2], bios[3], server_side=True)
        done = {"client": False, "server": False}
        for _ in range(10):
            for name, end in (("client", client), ("server", server)):
                if not done[name]:
                    try:
                        end.do_handshake()
                        done[name] = True
                    except ssl.SSLWantReadError:
                        pass
            bios[2].write(bios[1].read())  # client -> server
            bios[0].write(bios[3].read())  # server -> client
            if all(done.values()):
                break
        assert all(done.values()), host
        peer = x509.load_der_x509_certificate(server.getpeercert(binary_form=True) or b"")
        assert certs.device_serial_from_certificate(peer) == "SIM000001"
