"""The Annex K stanza, JIDs and the phone's verdict (acs_security.connreq.xmpp_stanza)."""

from __future__ import annotations

import pytest

from acs_security.connreq.xmpp_stanza import (
    ConnectionRequest,
    Iq,
    Jid,
    JidError,
    StanzaError,
    Verdict,
    allowed_sender,
    build_connection_request,
    build_error,
    build_result,
    parse_allowed_jids,
    parse_iq,
    parse_jid,
    phone_verdict,
)

ACS = "acs@xmpp.example.net/acs"
PHONE = "sep001122334455@xmpp.example.net/cwmp"


def test_connection_request_exact_bytes() -> None:
    text = build_connection_request("cr1", ACS, PHONE, "cruser", "p<&>w")
    assert text == (
        "<iq type=\"set\" id=\"cr1\" from=\"acs@xmpp.example.net/acs\" to=\"sep001122334455@xmpp.example.net/cwmp\">"
        "<connectionRequest xmlns='urn:broadband-forum-org:cwmp:xmppConnReq-1-0'>"
        "<username>cruser</username><password>p&lt;&amp;&gt;w</password>"
        "</connectionRequest></iq>")
    iq = parse_iq(text)
    assert iq == Iq("set", "cr1", ACS, PHONE, ConnectionRequest("cruser", "p<&>w"),
                    child_ns="urn:broadband-forum-org:cwmp:xmppConnReq-1-0")


def test_connection_request_without_sender_lets_the_server_stamp_it() -> None:
    text = build_connection_request("7", "", PHONE, "u", "p")
    assert text.startswith("<iq type=\"set\" id=\"7\" to=\"sep001122334455@xmpp.example.net/cwmp\">")


def test_connection_request_to_a_bad_jid_is_refused() -> None:
    with pytest.raises(JidError, match="domainpart"):
        build_connection_request("1", "", "user@", "u", "p")


def test_result_swaps_addresses() -> None:
    iq = parse_iq(build_connection_request("cr1", ACS, PHONE, "u", "p"))
    assert build_result(iq) == ("<iq type=\"result\" id=\"cr1\" from=\"sep001122334455@xmpp.example.net/cwmp\" "
                                "to=\"acs@xmpp.example.net/acs\"/>")
    assert parse_iq(build_result(iq)).type == "result"


def test_error_echoes_no_credential() -> None:
    iq = parse_iq(build_connection_request("cr1", ACS, PHONE, "u", "secret-pw"))
    text = build_error(iq, "not-authorized")
    assert text == (
        "<iq type=\"error\" id=\"cr1\" from=\"sep001122334455@xmpp.example.net/cwmp\" to=\"acs@xmpp.example.net/acs\">"
        "<connectionRequest xmlns='urn:broadband-forum-org:cwmp:xmppConnReq-1-0'><username/><password/>"
        "</connectionRequest>"
        "<error type='auth'><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
    assert "secret-pw" not in text
    back = parse_iq(text)
    assert (back.type, back.condition, back.error_type, back.request) == ("error", "not-authorized", "auth", None)


def test_service_unavailable_is_type_cancel() -> None:
    iq = parse_iq(build_connection_request("9", ACS, PHONE, "u", "p"))
    back = parse_iq(build_error(iq, "service-unavailable"))
    assert (back.condition, back.error_type) == ("service-unavailable", "cancel")


def test_error_condition_from_a_server_stanza() -> None:
    data = (b"<iq xmlns='jabber:client' type='error' id='x1' from='nobody@d'>"
            b"<error type='cancel'><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>gone</text>"
            b"<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
    iq = parse_iq(data)
    assert (iq.condition, iq.sender) == ("item-not-found", "nobody@d")


def test_error_without_condition_is_undefined_condition() -> None:
    assert parse_iq("<iq type='error' id='1'><error type='cancel'/></iq>").condition == "undefined-condition"


@pytest.mark.parametrize(("data", "reason"), [
    ("<message id='1'/>", "not an iq"),
    ("<iq id='1'/>", "type ''"),
    ("<iq type='set'/>", "without id"),
    ("<iq type='set' id='1'", "not XML"),
    ("<iq type='set' id='1'><connectionRequest xmlns='urn:broadband-forum-org:cwmp:xmppConnReq-1-0'>"
     "<username>u</username></connectionRequest></iq>", "without username or password"),
    ("<!DOCTYPE x [<!ENTITY e 'boom'>]><iq type='set' id='&e;'/>", "document type"),
    ("<iq type='set' id='1'>" + "x" * 9000 + "</iq>", "larger than"),
])
def test_bad_stanzas_are_refused(data: str, reason: str) -> None:
    with pytest.raises(StanzaError, match=reason):
        parse_iq(data)


def test_other_payload_namespace_is_reported() -> None:
    iq = parse_iq("<iq type='get' id='v1' from='x@d/r'><query xmlns='jabber:iq:version'/></iq>")
    assert (iq.child_ns, iq.request) == ("jabber:iq:version", None)


def test_jid_parts() -> None:
    assert parse_jid("Phone@Example.NET./cwmp/x") == Jid("Phone", "example.net", "cwmp/x")
    assert parse_jid("example.net") == Jid("", "example.net")
    assert parse_jid("a@b").bare == "a@b"
    assert str(parse_jid("a@b/r")) == "a@b/r"


@pytest.mark.parametrize(("text", "reason"), [
    ("", "empty JID"),
    ("@d", "empty localpart"),
    ("a@d/", "empty resourcepart"),
    ("a@", "empty domainpart"),
    ("a b@d", "localpart holds"),
    ("a:b@d", "localpart holds"),
    ("a@d e", "domainpart holds"),
    ("a@d/\x01", "control"),
    ("x" * 1024 + "@d", "longer than 1023"),
    ("a@" + "é" * 512, "longer than 1023"),
])
def test_bad_jids(text: str, reason: str) -> None:
    with pytest.raises(JidError, match=reason):
        parse_jid(text)


def test_jid_part_of_exactly_1023_octets_is_accepted() -> None:
    assert parse_jid("x" * 1023 + "@d").local == "x" * 1023


def test_allowed_list() -> None:
    assert parse_allowed_jids(" acs@d , acs2@d/r ,") == ("acs@d", "acs2@d/r")
    with pytest.raises(JidError, match="'bad@': empty domainpart"):
        parse_allowed_jids("acs@d,bad@")
    assert allowed_sender("anyone@d/x", [])
    assert allowed_sender("acs@d/any", ["acs@d"])
    assert allowed_sender("acs2@d/r", ["acs2@d/r"])
    assert not allowed_sender("acs2@d/other", ["acs2@d/r"])
    assert not allowed_sender("evil@d/r", ["acs@d"])
    assert not allowed_sender("", ["acs@d"])


def _iq(sender: str = ACS, user: str = "u", pw: str = "p") -> Iq:
    return parse_iq(build_connection_request("1", sender, PHONE, user, pw))


def test_phone_verdicts() -> None:
    allowed = ["acs@xmpp.example.net"]
    assert phone_verdict(_iq(), username="u", password="p", allowed=allowed) == Verdict(True)
    assert phone_verdict(_iq(pw="x"), username="u", password="p", allowed=allowed) == Verdict(False, "not-authorized")
    assert phone_verdict(_iq(user="x"), username="u", password="p", allowed=allowed) == Verdict(False, "not-authorized")
    # the sender is checked before the credential: a stranger with the right one is still refused
    assert (phone_verdict(_iq(sender="evil@xmpp.example.net/x"), username="u", password="p", allowed=allowed)
            == Verdict(False, "service-unavailable"))
    assert phone_verdict(_iq(sender="evil@d/x"), username="u", password="p", allowed=[]) == Verdict(True)
    other = parse_iq("<iq type='get' id='v1' from='x@d/r'><query xmlns='jabber:iq:version'/></iq>")
    assert phone_verdict(other, username="u", password="p", allowed=[]) == Verdict(False, "service-unavailable")


def test_repr_hides_password() -> None:
    assert "hunter2" not in repr(_iq(pw="hunter2"))
