"""The file endpoint's authorisation, with real requests against the real resources: each
file reachable by its own phone only (digest with its own credential, or a signed URL used
once before it expires); another phone's credentials, the shared one, an expired or reused
URL, a wrong method and path tricks are all refused. No sockets: StubTreq, a Clock, SQLite
in memory."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from treq.testing import StubTreq
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import Clock

from acs_security.files.offers import DOWNLOAD_FILE_TYPE, UPLOAD_FILE_TYPE, FileOffers, OfferError
from acs_security.files.tokens import FileSigner, parse_file_path
from acs_security.httpauth import digest_authorization
from acs_security.httpauth.digest import DigestVerifier
from acs_security.server.cwmp_resource import CwmpResource
from acs_security.server.files import CwmpRoot, FileResource
from acs_security.store import InformRecord, make_device_id, open_store
from acs_security.store.deferred import DeferredStore
from tests.server.harness import InlineThreadPool

BASE = "http://acs.example.net:7547"
CFG = (b'<?xml version="1.0" encoding="UTF-8"?>\n<flat-profile>\n'
       b"  <Proxy_Password>pw-A-secret</Proxy_Password>\n</flat-profile>\n")
UPLOADED = (b'<flat-profile>\n<Firewall ua="na">Enabled</Firewall>\n<SIP_Transport_1_>TLS</SIP_Transport_1_>\n'
            b"<No_Such_Element>x</No_Such_Element>\n<Proxy_Port>99999</Proxy_Port>\n"
            b"<VPN_Server>v.example.net</VPN_Server>\n<Proxy_Host/>\n</flat-profile>\n")


class Env:
    def __init__(self, *, auth: str = "auto") -> None:
        self.clock = Clock()
        self.clock.advance(1_800_000_000)
        self.store = open_store("sqlite://")
        self.ds = DeferredStore(self.store, self.clock, InlineThreadPool(), call_from_thread=lambda f, *a: f(*a))
        now = datetime.fromtimestamp(self.clock.seconds(), UTC)
        self.devices = {}
        for serial, model in (("FCHA", "CP-8851-3PCC"), ("FCHB", "CP-6821-3PCC"), ("FCHC", "CP-7841-3PCC")):
            device_id = make_device_id("00000C", model, serial)
            self.store.record_informs([InformRecord(
                device_id=device_id, oui="00000C", product_class=model, serial_number=serial,
                manufacturer="Cisco", software_version="sip88xx.12-0-1MPP0001-276", connection_request_url=None,
                udp_connection_request_address=None, parameter_key="", events=("1 BOOT",), inform_time=now,
                remote_address=None)])
            self.devices[serial] = device_id
        self.store.put_cpe_credential(self.devices["FCHA"], "phone-a", "pw-a")  # per device id
        self.store.put_cpe_credential("FCHB", "phone-b", "pw-b")  # per serial number
        self.store.put_cpe_credential("*", "shared", "pw-shared")  # FCHC has only this one
        signer = FileSigner(b"f" * 32)
        counter = itertools.count()
        self.random = lambda n: next(counter).to_bytes(n, "big")
        self.offers = FileOffers(store=self.ds, signer=signer, clock=self.clock, base_url=BASE, auth=auth,
                                 find_credential=lambda **kw: self.ds.call("find_cpe_credential", **kw))
        self.counts: list[tuple[str, str]] = []
        files = FileResource(store=self.ds, clock=self.clock, signer=signer,
                             verifier=DigestVerifier("acs-security", b"n" * 32), random_bytes=self.random,
                             observe=lambda method, outcome: self.counts.append((method, outcome)))
        cwmp = CwmpResource(clock=self.clock, store=self.ds)
        self.client = StubTreq(CwmpRoot(cwmp, files))

    def run(self, coro: Any) -> Any:
        d = ensureDeferred(coro)
        self.client.flush()
        out: list[Any] = []
        d.addBoth(out.append)
        assert out, "did not finish"
        if hasattr(out[0], "raiseException"):
            out[0].raiseException()
        return out[0]

    def download(self, serial: str = "FCHA", content: bytes = CFG, job_id: int | None = None) -> Any:
        return self.run(self.offers.download(device_id=self.devices[serial], serial=serial, job_id=job_id,
                                             job_key="acs-sec-job-1", content=content))

    def upload(self, serial: str = "FCHA") -> Any:
        return self.run(self.offers.upload(device_id=self.devices[serial], serial=serial, job_id=None,
                                           job_key="acs-sec-job-2"))

    def request(self, method: str, url: str, *, body: bytes | None = None,
                auth: tuple[str, str] | None = None) -> tuple[int, bytes, Any]:
        async def go() -> tuple[int, bytes, Any]:
            # StubTreq sets its request methods (treq's) as attributes in __init__.
            resp = await self.client.request(method, url, data=body)  # type: ignore[attr-defined]
            if resp.code == 401 and auth is not None:
                await resp.content()
                challenges = [v.decode() for v in resp.headers.getRawHeaders(b"www-authenticate", [])]
                header = digest_authorization(challenges, method, urlsplit(url).path, auth[0], auth[1],
                                              cnonce="c0ffee", nc=1)
                resp = await self.client.request(method, url, data=body,  # type: ignore[attr-defined]
                                                 headers={"Authorization": [header]})
            return resp.code, await resp.content(), resp.headers

        return self.run(go())


def test_a_digest_file_is_served_to_its_phone_and_refused_to_others():
    env = Env()
    rpc = env.download("FCHA")
    assert rpc.file_type == DOWNLOAD_FILE_TYPE and rpc.username == "phone-a" and rpc.password == "pw-a"
    assert rpc.file_size == len(CFG) and rpc.target_file_name == "cfg.xml" and rpc.url.startswith(BASE + "/files/")
    assert "pw-a" not in repr(rpc)
    code, body, headers = env.request("GET", rpc.url)
    assert code == 401 and body == b"authentication required\n"
    assert any(v.startswith(b"Digest ") for v in headers.getRawHeaders(b"www-authenticate"))
    assert env.request("GET", rpc.url, auth=("phone-b", "pw-b"))[0] == 401  # another phone's credential
    assert env.request("GET", rpc.url, auth=("shared", "pw-shared"))[0] == 401  # everyone knows it
    assert env.request("GET", rpc.url, auth=("phone-a", "wrong"))[0] == 401
    code, body, headers = env.request("GET", rpc.url, auth=("phone-a", "pw-a"))
    assert code == 200 and body == CFG
    assert headers.getRawHeaders(b"cache-control") == [b"no-store"]
    assert headers.getRawHeaders(b"content-type") == [b"application/xml; charset=utf-8"]
    # Digest: the phone may fetch again (a retried download) until the transfer is over.
    assert env.request("GET", rpc.url, auth=("phone-a", "pw-a"))[0] == 200
    rec = env.store.get_file(parse_file_path(urlsplit(rpc.url).path).file_id)
    assert rec.state == "fetched" and rec.fetches == 2
    env.store.finish_file(rec.id, state="completed")
    assert env.request("GET", rpc.url, auth=("phone-a", "pw-a"))[0] == 410
    assert ("GET", "served") in env.counts and ("GET", "unauthorized") in env.counts


def test_a_phone_with_only_the_shared_credential_gets_a_signed_url_used_once():
    env = Env()
    rpc = env.download("FCHC")
    assert rpc.username == "" and rpc.password == ""
    assert env.request("HEAD", rpc.url)[0] == 200  # a HEAD does not use it up
    code, body, _ = env.request("GET", rpc.url)
    assert code == 200 and body == CFG
    code, body, _ = env.request("GET", rpc.url)
    assert code == 403 and b"used already" in body
    assert ("GET", "used") in env.counts


def test_a_per_serial_credential_is_the_phones_own():
    env = Env()
    rpc = env.download("FCHB")
    assert (rpc.username, rpc.password) == ("phone-b", "pw-b")
    assert env.request("GET", rpc.url, auth=("phone-a", "pw-a"))[0] == 401
    assert env.request("GET", rpc.url, auth=("phone-b", "pw-b"))[0] == 200


def test_an_expired_url_is_refused():
    env = Env()
    rpc = env.download("FCHA")
    env.clock.advance(env.offers.ttl + 1)
    code, body, _ = env.request("GET", rpc.url, auth=("phone-a", "pw-a"))
    assert code == 410 and b"expired" in body


@pytest.mark.parametrize("path", [
    "/files/", "/files", "/files/1", "/files/cfg.xml", "/files/../../etc/passwd",
    "/files/%2e%2e/%2e%2e/etc/passwd", "/files/..%2f..%2fetc%2fpasswd", "//files/x", "/files//cfg.xml",
    "/files/1.9999999999.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/cfg.xml",
])
def test_path_tricks_find_nothing(path):
    env = Env()
    env.download("FCHA")
    code, body, _ = env.request("GET", BASE + path)
    assert code in (404, 405) and b"flat-profile" not in body  # 405: not under /files/, the CWMP endpoint


def test_an_altered_token_is_not_a_file():
    env = Env()
    rpc = env.download("FCHA")
    path = urlsplit(rpc.url).path
    token = parse_file_path(path)
    other = env.download("FCHA")  # the next file's id, with the first file's signature
    forged = path.replace(f"/{token.file_id}.", f"/{parse_file_path(urlsplit(other.url).path).file_id}.")
    later = path.replace(f".{token.expires}.", f".{token.expires + 3600}.")
    for bad in (forged, later, path.replace("/cfg.xml", "/other.xml"), path + "/", path[:-1]):
        assert env.request("GET", BASE + bad, auth=("phone-a", "pw-a"))[0] == 404, bad
    assert ("GET", "not_found") in env.counts


def test_methods_fit_the_file():
    env = Env()
    rpc = env.download("FCHA")
    code, _, headers = env.request("PUT", rpc.url, body=b"<flat-profile/>")
    assert code == 405 and headers.getRawHeaders(b"allow") == [b"GET, HEAD"]
    up = env.upload("FCHA")
    code, _, headers = env.request("GET", up.url)
    assert code == 405 and headers.getRawHeaders(b"allow") == [b"PUT"]
    # What is not a file method goes to the CWMP endpoint, which does not implement it.
    assert env.request("DELETE", rpc.url)[0] == 501


def test_an_upload_is_read_with_the_data_model_and_kept_as_a_version():
    env = Env()
    up = env.upload("FCHB")
    assert up.file_type == UPLOAD_FILE_TYPE and up.username == "phone-b"
    assert env.request("PUT", up.url, body=UPLOADED, auth=("phone-a", "pw-a"))[0] == 401
    code, body, _ = env.request("PUT", up.url, body=UPLOADED, auth=("phone-b", "pw-b"))
    assert code == 201 and body == b"backup version 1 (new)\n"
    backup = env.store.get_backup(env.devices["FCHB"])
    assert backup.content == UPLOADED.decode()
    report = backup.report
    assert report["elements"] == 2 and report["unchanged"] == ["Proxy_Host"]
    assert report["unknown"] == [{"element": "No_Such_Element", "line": 4}]
    assert [i["element"] for i in report["invalid"]] == ["Proxy_Port"]
    assert report["absent"][0]["element"] == "VPN_Server"  # a CP-6821 has no VPN
    code, body, _ = env.request("PUT", up.url, body=UPLOADED, auth=("phone-b", "pw-b"))
    assert code == 200 and body == b"backup version 1 (unchanged)\n"
    assert env.store.get_backup(env.devices["FCHB"]).uploads == 2


def test_an_unreadable_upload_is_refused_and_stores_nothing():
    env = Env()
    up = env.upload("FCHA")
    code, body, _ = env.request("PUT", up.url, body=b"<flat-profile><Firewall>on</flat-profile>",
                                auth=("phone-a", "pw-a"))
    assert code == 400 and b"line 1" in body
    assert env.store.list_backups() == []
    assert env.store.get_file(parse_file_path(urlsplit(up.url).path).file_id).state == "failed"
    for hostile in (b'<!DOCTYPE x [<!ENTITY a "aaaa">]><flat-profile>&a;</flat-profile>', "é".encode("latin-1")):
        up = env.upload("FCHA")
        assert env.request("PUT", up.url, body=hostile, auth=("phone-a", "pw-a"))[0] == 400
    assert env.store.list_backups() == []


def test_a_signed_upload_place_is_used_once():
    env = Env()
    up = env.upload("FCHC")
    assert up.username == ""
    assert env.request("PUT", up.url, body=UPLOADED)[0] == 201
    assert env.request("PUT", up.url, body=UPLOADED)[0] == 403


def test_file_auth_modes():
    env = Env(auth="signed")
    assert env.download("FCHA").username == ""  # signed even where a credential exists
    env = Env(auth="digest")
    assert env.download("FCHA").username == "phone-a"
    with pytest.raises(OfferError, match="credential of its own"):
        env.download("FCHC")
    with pytest.raises(ValueError):
        FileOffers(store=None, signer=FileSigner(b"f" * 32), clock=Clock(), auth="basic")
