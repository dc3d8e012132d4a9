"""Passwords at rest: the key file, the AES-GCM codec, sealed job policies and parameters,
rotation, the ``secrets`` command, and a full push whose logs, API and CLI outputs and
database files are searched for every secret."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from acs_security.cli import main as cli_main
from acs_security.policy.document import Policy
from acs_security.secret_rotation import rotate_secrets, scan_secrets
from acs_security.secrets import (
    PREFIX,
    EncryptingCodec,
    KeyFileError,
    KeyRing,
    SecretStore,
    default_key_path,
    key_id_of,
    load_or_create_key_file,
    open_codec,
    read_key_file,
    write_key_file,
)
from acs_security.store import open_store
from acs_security.store import schema as t
from acs_security.store.records import InformRecord


def counter_bytes() -> Any:
    """Deterministic 'random' bytes: distinct on every call."""
    state = {"n": 0}

    def take(n: int) -> bytes:
        state["n"] += 1
        return (state["n"].to_bytes(4, "big") * (n // 4 + 1))[:n]

    return take


def test_key_file_is_created_owner_only_once_and_refused_when_open(tmp_path):
    path = tmp_path / "var" / "acs.key"
    ring, created = load_or_create_key_file(path, random_bytes=counter_bytes())
    assert created and stat.S_IMODE(path.stat().st_mode) == 0o600
    again, created = load_or_create_key_file(path, random_bytes=counter_bytes())
    assert not created and again == ring
    material = path.read_text().splitlines()[-1]
    assert repr(ring) == f"KeyRing(ids=['{ring.primary_id}'])" and material not in repr(ring)  # ids only
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        read_key_file(path)
    os.chmod(path, 0o600)
    path.write_text("# comment\nnot-base64!\n")
    with pytest.raises(KeyFileError, match="line 2 is not"):
        read_key_file(path)
    with pytest.raises(KeyFileError, match="No such file"):
        read_key_file(tmp_path / "absent.key")


def test_codec_round_trip_fresh_nonces_tamper_and_legacy_text():
    ring = KeyRing((b"k" * 32,))
    codec = EncryptingCodec(ring, random_bytes=counter_bytes())
    one, two = codec.encode("s3cret-Pass"), codec.encode("s3cret-Pass")
    assert one != two and "s3cret" not in one and key_id_of(one) == ring.primary_id and one.startswith(PREFIX)
    assert codec.decode(one) == "s3cret-Pass" == codec.decode(two)
    tampered = one[:-4] + ("AAAA" if not one.endswith("AAAA") else "BBBB")
    with pytest.raises(ValueError, match="does not decrypt") as info:
        codec.decode(tampered)
    assert tampered not in str(info.value)
    assert codec.decode("plain-before-encryption") == "plain-before-encryption"
    other = EncryptingCodec(KeyRing((b"o" * 32,)))
    with pytest.raises(ValueError, match="does not hold"):
        other.decode(one)
    reloading = EncryptingCodec(KeyRing((b"o" * 32,)), reload=lambda: KeyRing((b"o" * 32, b"k" * 32)))
    assert reloading.decode(one) == "s3cret-Pass"  # another process rotated: the file is read again


def test_every_secret_setting_is_masked_by_the_service():
    from acs_security.mapping import load_catalogue
    from acs_security.service import FleetService

    service = FleetService(None)
    paths = [s.path for s in load_catalogue().settings if s.secret]
    assert len(paths) == 5 and all(service.mask(p, "x") == "********" for p in paths)


def test_default_key_places(tmp_path):
    assert default_key_path(f"sqlite:///{tmp_path}/acs.db") == tmp_path / "acs.key"
    assert default_key_path("sqlite://") is None and default_key_path("postgresql://u@h/db") == Path("var/acs.key")
    codec, path, created = open_codec(None, "sqlite://")
    assert path is None and created and codec.decode(codec.encode("x")) == "x"


def _device(store: Any, serial: str) -> str:
    from datetime import UTC, datetime

    from acs_security.store.records import make_device_id

    device_id = make_device_id("00000C", "CP-8851-3PCC", serial)
    store.record_informs([InformRecord(
        device_id=device_id, oui="00000C", product_class="CP-8851-3PCC", serial_number=serial,
        manufacturer="Cisco", software_version="sip88xx.12-0-1MPP-1", connection_request_url=None,
        udp_connection_request_address=None, parameter_key="", events=("1 BOOT",),
        inform_time=datetime(2026, 1, 1, tzinfo=UTC), remote_address=None)])
    return device_id


def _raw(store: Any) -> str:
    with store.engine.connect() as conn:
        rows = [list(r) for table in (t.cpe_credentials, t.connection_request_credentials, t.jobs,
                                       t.device_parameters, t.device_files, t.config_blobs)
                for r in conn.execute(sa.select(table))]
    return json.dumps(rows, default=str)


def _filled_store(tmp_path: Path, codec: Any) -> tuple[Any, str]:
    from datetime import UTC, datetime

    store = SecretStore(open_store(f"sqlite:///{tmp_path}/acs.db", secret_codec=codec), codec)
    device = _device(store, "SEC0001")
    store.put_cpe_credential("*", "cpe", "Cpe-Secret-111")
    store.put_connection_request_credential(device, "cr", "Cr-Secret-222")
    policy = Policy(name="p", settings={"Proxy_Password": "Proxy-Secret-333", "Firewall": "Enabled",
                                        "VPN_Password": "Vpn-Secret-444"})
    store.create_job(name="p", policy=policy.to_json(), selector="all", options={}, parameter_key_prefix="k-",
                     deadline=datetime(2030, 1, 1, tzinfo=UTC), tasks=[(device, 0)])
    store.set_device_parameters(device, [("Device.X_CISCO_HTTPProxySettings.Password", "Proxy-Secret-333", "string"),
                                         ("Device.X_CISCO_SecuritySettings.Firewall", "Enabled", "string")])
    cfg = "<flat-profile><VPN_Password>File-Secret-666</VPN_Password></flat-profile>"
    store.create_file(device_id=device, kind="download", command_key="k-1", auth="digest",
                      expires_at=datetime(2030, 1, 1, tzinfo=UTC), content=cfg)
    store.store_backup(device_id=device, content=cfg.replace("666", "777"), report={}, keep=5)
    return store, device


SECRETS = ("Cpe-Secret-111", "Cr-Secret-222", "Proxy-Secret-333", "Vpn-Secret-444", "File-Secret-666",
           "File-Secret-777")


def test_store_keeps_no_cleartext_and_gives_it_back(tmp_path):
    codec = EncryptingCodec(KeyRing((b"a" * 32,)), random_bytes=counter_bytes())
    store, device = _filled_store(tmp_path, codec)
    raw = _raw(store)
    assert not any(s in raw for s in SECRETS) and raw.count(PREFIX) == 7
    assert "********" not in raw  # sealed, not masked: an unsealed read cannot push a mask
    job = store.get_job(1)
    assert Policy.from_json(job.policy).settings["Proxy_Password"] == "Proxy-Secret-333"
    assert store.list_jobs()[0].policy == job.policy
    assert "Proxy_Password" not in Policy.from_json(store.inner.get_job(1).policy).settings
    assert store.device_parameters(device)["Device.X_CISCO_HTTPProxySettings.Password"][0] == "Proxy-Secret-333"
    assert store.get_connection_request_credential(device).password == "Cr-Secret-222"
    assert store.find_cpe_credential(device_id=None, serial_number=None).password == "Cpe-Secret-111"
    assert scan_secrets(store.engine) == {
        "cpe_credentials": {codec.ring.primary_id: 1}, "connection_request_credentials": {codec.ring.primary_id: 1},
        "jobs": {codec.ring.primary_id: 2}, "device_parameters": {codec.ring.primary_id: 1},
        "device_files": {codec.ring.primary_id: 1}, "config_blobs": {codec.ring.primary_id: 1}}
    store.close()


def test_rotation_reencrypts_everything_and_drops_the_old_key(tmp_path):
    key_file = tmp_path / "acs.key"
    write_key_file(key_file, KeyRing((b"o" * 32,)))
    old = EncryptingCodec(read_key_file(key_file), random_bytes=counter_bytes())
    store, device = _filled_store(tmp_path, old)
    with store.engine.begin() as conn:  # a password stored before encryption existed
        conn.execute(sa.update(t.cpe_credentials).values(password="Legacy-Secret-555"))
    report = rotate_secrets(store.engine, key_file, random_bytes=counter_bytes())
    assert report.old_key_ids == (old.ring.primary_id,) and report.remaining == 0 and report.dropped_old
    assert report.reencrypted == {"cpe_credentials": 1, "connection_request_credentials": 1, "jobs": 2,
                                  "device_parameters": 1, "device_files": 1, "config_blobs": 1}
    ring = read_key_file(key_file)
    assert ring.ids == (report.new_key_id,) and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    raw = _raw(store)
    assert "Legacy-Secret-555" not in raw and not any(s in raw for s in SECRETS)
    new = EncryptingCodec(ring)
    reopened = SecretStore(open_store(f"sqlite:///{tmp_path}/acs.db", secret_codec=new), new)
    assert reopened.find_cpe_credential(device_id=None, serial_number=None).password == "Legacy-Secret-555"
    assert Policy.from_json(reopened.get_job(1).policy).settings["VPN_Password"] == "Vpn-Secret-444"
    assert reopened.device_parameters(device)["Device.X_CISCO_HTTPProxySettings.Password"][0] == "Proxy-Secret-333"
    assert "File-Secret-666" in reopened.get_file(1).content
    assert "File-Secret-777" in reopened.get_backup(device).content
    with pytest.raises(ValueError, match="does not hold"):
        old.decode(new.encode("x"))  # the dropped key cannot read what the new one wrote
    reopened.close()
    store.close()


def test_rotation_refuses_values_no_key_opens_and_changes_nothing(tmp_path):
    key_file = tmp_path / "acs.key"
    write_key_file(key_file, KeyRing((b"o" * 32,)))
    stranger = EncryptingCodec(KeyRing((b"s" * 32,)))
    store, _ = _filled_store(tmp_path, stranger)
    before, text = _raw(store), key_file.read_text()
    with pytest.raises(ValueError, match="does not hold"):
        rotate_secrets(store.engine, key_file)
    assert _raw(store) == before and key_file.read_text() == text
    store.close()


def test_secrets_command_status_rotate_keep_old_and_prune(tmp_path, capsys):
    key_file = tmp_path / "acs.key"
    codec, _, _ = open_codec(key_file, f"sqlite:///{tmp_path}/acs.db")
    store, _ = _filled_store(tmp_path, codec)
    store.close()
    db = ["--db", f"sqlite:///{tmp_path}/acs.db", "--json"]
    assert cli_main(["secrets", "status", *db]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["keys"] == [codec.ring.primary_id] and status["plaintext"] == 0
    assert cli_main(["secrets", "rotate", *db, "--keep-old"]) == 0
    rotated = json.loads(capsys.readouterr().out)
    assert not rotated["dropped_old_keys"]
    assert read_key_file(key_file).ids == (rotated["new_key_id"], codec.ring.primary_id)
    assert cli_main(["secrets", "prune", *db]) == 0
    assert json.loads(capsys.readouterr().out)["dropped"] == [codec.ring.primary_id]
    assert read_key_file(key_file).ids == (rotated["new_key_id"],)
    assert cli_main(["secrets", "status", "--db", f"sqlite:///{tmp_path}/acs.db"]) == 0
    out = capsys.readouterr().out
    assert rotated["new_key_id"] in out and not any(s in out for s in SECRETS)
    write_key_file(key_file, KeyRing((b"z" * 32,)))  # the wrong key file
    assert cli_main(["secrets", "status", *db]) == 1
    assert json.loads(capsys.readouterr().out)["unknown_keys"] == [rotated["new_key_id"]]


# ------------------------------------------------------------------ a full push, grepped

def test_a_full_push_leaks_no_secret_to_logs_outputs_or_database_files(tmp_path, capsys):
    from twisted.internet.threads import deferToThreadPool
    from twisted.logger import formatEvent, globalLogPublisher

    from acs_security.server.app import AcsServer
    from acs_security.server.config import ConfigError, load_config
    from acs_security.sim.fleet import SimulatedFleet
    from acs_security.store.records import make_device_id
    from tests.support import run_in_reactor, wait_until

    cpe_pw, cr_pw, proxy_pw, vpn_pw = "Cpe-7d1e-hidden", "Cr-2c9b-hidden", "Px-5a3f-hidden", "Vpn-8e4c-hidden"
    secrets = (cpe_pw, cr_pw, proxy_pw, vpn_pw)
    (tmp_path / "cr.pw").write_text(cr_pw + "\n")
    policy = tmp_path / "proxy.toml"
    policy.write_text(f'[settings]\nProxy_Mode = "Manual"\nProxy_Host = "proxy.example.net"\nProxy_Port = "3128"\n'
                      f'Proxy_Server_Requires_Authentication = "Yes"\nProxy_Username = "phones"\n'
                      f'Proxy_Password = "{proxy_pw}"\nVPN_Password = "{vpn_pw}"\nFirewall = "Enabled"\n')
    settings = {"db": f"sqlite:///{tmp_path}/acs.db", "cwmp_listen": "127.0.0.1:0", "api_listen": "127.0.0.1:0",
                "cpe_auth": True, "cr_username": "acs-cr", "cr_password_file": str(tmp_path / "cr.pw"),
                "cr_session_wait": 10, "public_url": "http://acs.example.net/cwmp"}
    events: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        events.append((formatEvent(event) or "") + repr(event))

    outputs: list[str] = []

    async def go(reactor: Any) -> None:
        server = AcsServer(config=load_config(environ={}, overrides=settings), reactor=reactor)
        server.start()
        await server.start_engine()
        server.store.put_cpe_credential("*", "cpe", cpe_pw)
        fleet = SimulatedFleet(
            reactor, f"http://acs.example.net:{server.address('cwmp').port}/cwmp", phones=6,
            models=("CP-8851-3PCC",), firmware=("12.0(1)",), resolve={"acs.example.net": "127.0.0.1"},
            inform_interval=600, boot_ramp_s=0.3, seed=8, cr_delay=(0.02, 0.05), retry_scale=0.02,
            acs_username="cpe", acs_password=cpe_pw, cr_password_mode="shared", cr_username="acs-cr",
            cr_password=cr_pw, cr_min_interval=0.2)
        api = server.url("api").rstrip("/")
        token = server.issue_token("secrets-test", "operator")

        async def cli(*argv: str) -> int:
            rc = await deferToThreadPool(reactor, reactor.getThreadPool(), cli_main, list(argv))
            outputs.append(capsys.readouterr().out)
            return rc

        try:
            await fleet.start()
            await wait_until(reactor, lambda: server.store.count_devices() == 6, timeout=20, what="boot")
            for phone in fleet.phones:  # per-device connection-request credentials, as provisioning sets them
                server.store.put_connection_request_credential(
                    make_device_id("00000C", phone.product_class, phone.serial), "acs-cr", cr_pw)
            auth = ("--server", api, "--token", token)
            assert await cli("push", str(policy), "--select", "all", "--dry-run", *auth) == 0
            assert await cli("push", str(policy), "--select", "all", "--dry-run", "--json", *auth) == 0
            assert await cli("push", str(policy), "--select", "all", "--wait", "--json", *auth) == 0
            summary = json.loads(outputs[-1].splitlines()[-1])  # JSON lines: the final one
            assert summary["state"] == "completed" and summary["applied"] + summary["applied_pending_reboot"] == 6
            dry = json.loads(outputs[1])
            assert [f["rule"] for f in dry["findings"]] == ["proxy-credentials-cleartext"] and not dry["refused_by"]
            assert "proxy-credentials-cleartext" in outputs[0]
            assert all(p.params["Device.X_CISCO_HTTPProxySettings.Password"] == proxy_pw for p in fleet.phones)
            device = make_device_id("00000C", "CP-8851-3PCC", fleet.phones[0].serial)
            for argv in (["jobs", "show", "1", "--devices", "--json"], ["jobs", "report", "1", "--format", "json"],
                         ["jobs", "list"], ["devices", "show", device, "--json"], ["devices", "show", device],
                         ["devices", "list", "--json"]):
                assert await cli(*argv, "--server", api, "--token", token) == 0
            shown = json.loads(outputs[-3])["parameters"]
            assert shown["Device.X_CISCO_HTTPProxySettings.Password"]["value"] == "********"
        finally:
            await fleet.stop()
            await server.stop()

    globalLogPublisher.addObserver(observe)
    try:
        run_in_reactor(go, timeout=60)
    finally:
        globalLogPublisher.removeObserver(observe)
    assert events and len(outputs) == 9
    for secret in secrets:
        assert not [e for e in events if secret in e], f"{secret} in the logs"
        assert not [o for o in outputs if secret in o], f"{secret} in a CLI/API output"
    blobs = b"".join(p.read_bytes() for p in tmp_path.glob("acs.db*"))
    assert not [s for s in secrets if s.encode() in blobs], "a secret in the database files"
    key = tmp_path / "acs.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600  # created on first start, next to the database
    # A restart with another key file stops at once instead of failing every connection request.
    key.unlink()
    write_key_file(key, KeyRing((b"w" * 32,)))
    with pytest.raises(ConfigError, match="restore the key file"):
        AcsServer(config=load_config(environ={}, overrides=settings), reactor=None).start()


def test_the_secret_names_remembered_give_the_same_sealing_and_stay_bounded(tmp_path, monkeypatch):
    # SecretStore remembers is_secret_parameter per name (issue 17); a second write of the
    # same paths is sealed alike, and the memory starts over at its bound.
    import acs_security.secrets as secrets_module

    codec = EncryptingCodec(KeyRing((b"a" * 32,)), random_bytes=counter_bytes())
    store = SecretStore(open_store(f"sqlite:///{tmp_path}/acs.db", secret_codec=codec), codec)
    device = _device(store, "SEC0002")
    params = [("Device.X_CISCO_HTTPProxySettings.Password", "Proxy-Secret-333", "string"),
              ("Device.X_CISCO_SecuritySettings.Firewall", "Enabled", "string")]
    for _ in range(2):
        store.set_device_parameters(device, params)
        raw = store.inner.device_parameters(device)
        assert raw["Device.X_CISCO_HTTPProxySettings.Password"][0].startswith(PREFIX)
        assert raw["Device.X_CISCO_SecuritySettings.Firewall"][0] == "Enabled"
    monkeypatch.setattr(secrets_module, "_SECRET_NAMES_MAX", 3)
    store.set_device_parameters(device, [(f"Device.X.P{i}", "v", "string") for i in range(7)])
    assert len(store._secret_names) <= 3
    store.close()
