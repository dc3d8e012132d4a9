"""The CWMP endpoint driven with real envelopes over in-memory HTTP (no sockets, fake clock)."""

from __future__ import annotations

import gzip

import pytest

from acs_security.cwmp import messages as m
from acs_security.cwmp.soap import CWMP_1_0, CWMP_1_2, CWMP_1_4, build_envelope, parse_envelope
from acs_security.httpauth.basic import basic_authorization
from acs_security.httpauth.digest import digest_authorization
from acs_security.store.records import make_device_id
from tests.server.harness import body_message, inform, make_harness, run

DEV = make_device_id("00000C", "CP-8851-3PCC", "FCH2231A0B1")


def assert_refused(code, content):
    """Out-of-order input: HTTP 400, or a CWMP fault 8003 in a 200 (TR-069 section 3.4.1)."""
    if code == 200:
        assert body_message(content).code == 8003
    else:
        assert code == 400


@pytest.fixture
def h():
    harness = make_harness()
    yield harness
    harness.close()


def test_inform_informresponse_empty_post_204(h):
    async def go():
        code, resp, content = await h.post(inform(events=("0 BOOTSTRAP", "1 BOOT")))
        assert code == 200
        env = parse_envelope(content)
        assert isinstance(env.message, m.InformResponse) and env.message.max_envelopes == 1
        assert env.cwmp_id == "1" and env.namespace == CWMP_1_0
        assert resp.headers.getRawHeaders("Set-Cookie")[0].startswith("acs_session=tok0;")
        code, _, content = await h.post(b"")
        assert (code, content) == (204, b"")

    run(h, go())
    device = h.store.get_device(DEV)
    assert device.product_class == "CP-8851-3PCC"
    assert device.connection_request_url == "http://10.0.0.23:8734/FCH2231A0B1"
    assert device.events == ("0 BOOTSTRAP", "1 BOOT")
    assert h.log[-1]["outcome"] == "done" and h.log[-1]["device"] == DEV
    assert len(h.resource.sessions) == 0


@pytest.mark.parametrize("ns", [CWMP_1_2, CWMP_1_4])
def test_reply_in_the_cpes_namespace(h, ns):
    async def go():
        _, _, content = await h.post(inform(namespace=ns, cwmp_id="abc-7"))
        assert f'xmlns:cwmp="{ns}"'.encode() in content
        assert parse_envelope(content).cwmp_id == "abc-7"

    run(h, go())


def test_gzip_body_is_accepted(h):
    async def go():
        code, _, _ = await h.post(gzip.compress(inform()), {"Content-Encoding": "gzip"})
        assert code == 200

    run(h, go())


def test_cpe_get_rpc_methods_and_transfer_complete_answered(h):
    async def go():
        await h.post(inform(events=("7 TRANSFER COMPLETE",)))
        code, _, content = await h.post(build_envelope(m.GetRPCMethods(), namespace=CWMP_1_0, cwmp_id="2"))
        msg = body_message(content)
        assert code == 200 and isinstance(msg, m.GetRPCMethodsResponse)
        assert {"Inform", "GetRPCMethods", "TransferComplete"} <= set(msg.methods)
        tc = m.TransferComplete("fw-1", m.TransferCompleteFault(9010, "File transfer failure"),
                                m.UNKNOWN_TIME, m.UNKNOWN_TIME)
        code, _, content = await h.post(build_envelope(tc, namespace=CWMP_1_0, cwmp_id="3"))
        assert isinstance(body_message(content), m.TransferCompleteResponse)
        assert (await h.post(b""))[0] == 204

    run(h, go())
    [rec] = h.store.list_transfer_completes(DEV)
    assert rec.command_key == "fw-1" and rec.fault_code == 9010


class OneRequestProvisioner:
    def __init__(self):
        self.sent = False
        self.responses = []
        self.ended = []

    async def session_started(self, ctx):
        pass

    async def next_request(self, ctx):
        if self.sent:
            return None
        self.sent = True
        return m.GetParameterValues(("Device.X_CISCO_SecuritySettings.TLSCipherList",))

    async def handle_response(self, ctx, request, response):
        self.responses.append((request, response))

    async def session_ended(self, ctx, outcome):
        self.ended.append(outcome)


def test_acs_request_and_cpe_response_reach_the_provisioner():
    prov = OneRequestProvisioner()
    h = make_harness(provisioner=prov)

    async def go():
        await h.post(inform())
        code, _, content = await h.post(b"")
        env = parse_envelope(content)
        assert code == 200 and isinstance(env.message, m.GetParameterValues)
        reply = m.GetParameterValuesResponse(
            (m.ParameterValue("Device.X_CISCO_SecuritySettings.TLSCipherList", "HIGH", "string"),))
        code, _, content = await h.post(build_envelope(reply, namespace=CWMP_1_0, cwmp_id=env.cwmp_id))
        assert code == 204

    run(h, go())
    assert isinstance(prov.responses[0][1], m.GetParameterValuesResponse)
    assert prov.ended == ["done"]
    assert h.log[-1]["rpcs"] == ["GetParameterValues"]
    h.close()


def test_response_with_wrong_id_ends_the_session_with_fault_8003():
    prov = OneRequestProvisioner()
    h = make_harness(provisioner=prov)

    async def go():
        await h.post(inform())
        await h.post(b"")
        reply = m.GetParameterValuesResponse(())
        code, _, content = await h.post(build_envelope(reply, namespace=CWMP_1_0, cwmp_id="wrong"))
        fault = body_message(content)
        assert code == 200 and isinstance(fault, m.Fault) and fault.code == 8003

    run(h, go())
    assert h.log[-1]["outcome"] == "error"
    assert prov.ended == ["error"]
    assert len(h.resource.sessions) == 0
    h.close()


@pytest.mark.parametrize("first", [
    b"",
    build_envelope(m.GetParameterValuesResponse(()), namespace=CWMP_1_0, cwmp_id="1"),
    build_envelope(m.GetRPCMethods(), namespace=CWMP_1_0, cwmp_id="1"),
])
def test_a_session_must_start_with_an_inform(h, first):
    async def go():
        code, resp, content = await h.post(first)
        assert_refused(code, content)
        assert resp.headers.getRawHeaders("Set-Cookie") is None

    run(h, go())
    assert len(h.resource.sessions) == 0 and h.store.count_devices() == 0


HOSTILE = [
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
    b"<lolz>&lol2;</lolz>",
    b'<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>',
    b"<soap:Envelope xmlns:soap='http://schemas.xmlsoap.org/soap/envelope/'><soap:Body>",
    b"\x00\x01\x02 not xml",
]


@pytest.mark.parametrize("body", HOSTILE)
def test_hostile_xml_refused_and_server_keeps_serving(h, body):
    async def go():
        code, _, content = await h.post(body)
        assert code == 400
        assert b"Traceback" not in content and b"root:" not in content
        code, _, _ = await h.post(inform())
        assert code == 200

    run(h, go())


def test_second_concurrent_session_for_one_device_gets_503(h):
    async def go():
        code, _, _ = await h.post(inform(), cookies={})
        assert code == 200
        h.client = type(h.client)(h.resource)  # a second client: no cookie, another connection
        code, resp, _ = await h.post(inform())
        assert code == 503
        assert resp.headers.getRawHeaders("Retry-After") == ["10"]
        code, _, _ = await h.post(inform(serial="OTHER0001"))
        assert code == 200  # other devices are not affected

    run(h, go())


def test_capacity_limit_503_for_new_sessions_while_current_ones_continue():
    h = make_harness(max_sessions=1)
    first = h.client

    async def go():
        assert (await h.post(inform(serial="A1")))[0] == 200
        h.client = type(first)(h.resource)
        code, resp, _ = await h.post(inform(serial="B2"))
        assert code == 503 and resp.headers.getRawHeaders("Retry-After")
        h.client = first
        assert (await h.post(b""))[0] == 204  # the session in progress completes

    run(h, go())
    assert h.store.get_device(make_device_id("00000C", "CP-8851-3PCC", "B2")) is None
    h.close()


def test_idle_session_times_out_with_the_fake_clock(h):
    async def go():
        assert (await h.post(inform()))[0] == 200
        assert len(h.resource.sessions) == 1
        h.clock.advance(29)
        assert len(h.resource.sessions) == 1
        h.clock.advance(2)
        assert len(h.resource.sessions) == 0
        # The stale cookie starts nothing: an empty POST without a session is refused.
        code, _, content = await h.post(b"")
        assert_refused(code, content)
        # And the device is free for a new session at once.
        h.client = type(h.client)(h.resource)
        assert (await h.post(inform()))[0] == 200

    run(h, go())
    assert any(e.get("outcome") == "timeout" for e in h.log)


# -- authentication ---------------------------------------------------------------------


def challenge_of(resp, algorithm="SHA-256"):
    for value in resp.headers.getRawHeaders("WWW-Authenticate"):
        if f"algorithm={algorithm}" in value:
            return value
    raise AssertionError("no digest challenge")


@pytest.fixture
def ha():
    harness = make_harness(cpe_auth=True)
    harness.store.put_cpe_credential("FCH2231A0B1", "phone1", "s3cret-pass")
    yield harness
    harness.close()


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_digest_success(ha, algorithm):
    async def go():
        code, resp, _ = await ha.post(inform())
        assert code == 401
        values = resp.headers.getRawHeaders("WWW-Authenticate")
        assert values[0].startswith("Digest") and "SHA-256" in values[0]  # strongest first
        assert not any(v.startswith("Basic") for v in values)  # no basic over plain HTTP
        auth = digest_authorization(challenge_of(resp, algorithm), "POST", "/cwmp", "phone1",
                                    "s3cret-pass", cnonce="c1", nc=1)
        code, _, content = await ha.post(inform(), {"Authorization": auth})
        assert code == 200 and isinstance(body_message(content), m.InformResponse)
        assert (await ha.post(b""))[0] == 204

    run(ha, go())
    assert ha.log[-1]["auth"] == "digest"


def test_digest_wrong_password_refused_and_not_logged(ha):
    async def go():
        _, resp, _ = await ha.post(inform())
        auth = digest_authorization(challenge_of(resp), "POST", "/cwmp", "phone1", "wrong", cnonce="c", nc=1)
        code, resp, _ = await ha.post(inform(), {"Authorization": auth})
        assert code == 401 and resp.headers.getRawHeaders("WWW-Authenticate")

    run(ha, go())
    assert ha.store.count_devices() == 0
    assert "wrong" not in repr(ha.log) and "s3cret" not in repr(ha.log)
    assert ha.log[-1]["outcome"] == "refused" and "digest" in ha.log[-1]["detail"]


def test_digest_replayed_nonce_refused(ha):
    async def go():
        _, resp, _ = await ha.post(inform())
        auth = digest_authorization(challenge_of(resp), "POST", "/cwmp", "phone1", "s3cret-pass",
                                    cnonce="c", nc=1)
        assert (await ha.post(inform(), {"Authorization": auth}))[0] == 200
        assert (await ha.post(b""))[0] == 204
        ha.client = type(ha.client)(ha.resource)
        code, _, _ = await ha.post(inform(), {"Authorization": auth})  # same nonce and nc
        assert code == 401

    run(ha, go())
    assert "replayed" in ha.log[-1]["detail"]


def test_credential_of_another_device_is_not_accepted(ha):
    ha.store.put_cpe_credential("OTHER0001", "phone2", "other-pass")

    async def go():
        _, resp, _ = await ha.post(inform())
        auth = digest_authorization(challenge_of(resp), "POST", "/cwmp", "phone2", "other-pass",
                                    cnonce="c", nc=1)
        assert (await ha.post(inform(), {"Authorization": auth}))[0] == 401

    run(ha, go())


def test_basic_refused_over_plain_http(ha):
    async def go():
        code, _, _ = await ha.post(inform(), {"Authorization": basic_authorization("phone1", "s3cret-pass")})
        assert code == 401

    run(ha, go())
    assert "plain HTTP" in ha.log[-1]["detail"]


def test_basic_over_plain_http_when_the_operator_allows_it():
    h = make_harness(cpe_auth=True, allow_insecure_basic=True)
    h.store.put_cpe_credential("*", "fleet", "shared-pass")

    async def go():
        code, _, _ = await h.post(inform(), {"Authorization": basic_authorization("fleet", "shared-pass")})
        assert code == 200
        assert (await h.post(b""))[0] == 204

    run(h, go())
    h.close()


def test_store_failure_at_the_inform_answers_503_with_retry_after_and_keeps_no_session(h):
    h.store.close()

    async def go():
        code, resp, content = await h.post(inform())
        # TR-069 3.7.1.5: 503 + Retry-After, which a CPE retries; not fault 8002, a failed
        # session it backs off from (TR-069 3.2.1.1), nor a 500.
        assert code == 503 and resp.headers.getRawHeaders("Retry-After") == ["10"]
        assert b"retry later" in content

    run(h, go())
    assert len(h.resource.sessions) == 0
    assert h.log[-1]["outcome"] == "refused" and h.log[-1]["status"] == 503
    assert h.log[-1]["detail"].startswith("store: cannot record informs")


def test_cwmp_14_version_negotiation(h):
    msg = parse_envelope(inform(namespace=CWMP_1_4)).message
    body = build_envelope(msg, namespace=CWMP_1_4, cwmp_id="9", supported_versions="1.0,1.2,1.4")

    async def go():
        _, _, content = await h.post(body)
        env = parse_envelope(content)
        assert env.use_version == "1.4" and env.namespace == CWMP_1_4

    run(h, go())
