"""XMPP connection requests (TR-069 Annex K): the stanza and the phone's verdict (pure).

The ACS asks a phone to call in by sending it, through an XMPP server both are logged in
to, an IQ ``set`` carrying the phone's connection-request credential (Annex K.2.2)::

    <iq type="set" id="..." from="acs@example.net/acs" to="phone@example.net/cwmp">
      <connectionRequest xmlns="urn:broadband-forum-org:cwmp:xmppConnReq-1-0">
        <username>...</username><password>...</password>
      </connectionRequest>
    </iq>

The phone answers an IQ ``result`` and then opens a CWMP session with the event
"6 CONNECTION REQUEST"; or an IQ ``error``: ``service-unavailable`` (type ``cancel``) when
the sender is not in its ``Device.ManagementServer.ConnReqAllowedJabberIDs`` (Annex K.2.2:
the phone acts as if it did not support the request), ``not-authorized`` (type ``auth``)
when the credential is wrong. The error echoes the request's child without the credential.

This module builds and parses those stanzas as text, checks JIDs against RFC 7622's
sizes and characters, and decides a phone's answer. No Twisted, no sockets, no clock:
:mod:`acs_security.connreq.xmpp` is the client that carries them.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

__all__ = [
    "NS_CONNREQ",
    "NS_STANZAS",
    "ConnectionRequest",
    "Iq",
    "Jid",
    "JidError",
    "StanzaError",
    "Verdict",
    "build_connection_request",
    "build_error",
    "build_result",
    "allowed_sender",
    "parse_allowed_jids",
    "parse_iq",
    "parse_jid",
    "phone_verdict",
]

#: Annex K.2.2's namespace of the connectionRequest element.
NS_CONNREQ = "urn:broadband-forum-org:cwmp:xmppConnReq-1-0"
#: RFC 6120 section 8.3.3: the namespace of stanza error conditions.
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"

#: RFC 7622 section 3.2-3.4: each part of a JID is at most 1023 octets.
MAX_PART = 1023
#: RFC 7622 section 3.3.1: characters the localpart may not hold (besides whitespace and controls).
_LOCAL_FORBIDDEN = frozenset("\"&'/:<>@")
#: A stanza larger than this is not a connection request (the two strings are short); it is
#: refused before parsing.
MAX_STANZA = 8192
#: RFC 6120 section 8.3.2: the error type that goes with each condition the phone sends.
_ERROR_TYPES = {"service-unavailable": "cancel", "not-authorized": "auth", "bad-request": "modify",
                "feature-not-implemented": "cancel", "resource-constraint": "wait"}

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                          remove_comments=True, remove_pis=True, collect_ids=False)


class JidError(ValueError):
    """A JID that RFC 7622 does not allow; the message says which part and why."""


class StanzaError(ValueError):
    """Text that is not an IQ stanza this module can read; the message says why."""


@dataclass(frozen=True, slots=True)
class Jid:
    """``local@domain/resource`` (RFC 7622 section 3.1); local and resource may be empty."""

    local: str
    domain: str
    resource: str = ""

    @property
    def bare(self) -> str:
        return f"{self.local}@{self.domain}" if self.local else self.domain

    def __str__(self) -> str:
        return f"{self.bare}/{self.resource}" if self.resource else self.bare


def _check_part(name: str, part: str) -> None:
    if len(part.encode("utf-8")) > MAX_PART:
        raise JidError(f"{name} is longer than {MAX_PART} octets (RFC 7622 section 3)")
    if any(ord(c) < 0x20 or c == "\x7f" for c in part):
        raise JidError(f"{name} holds a control character (RFC 7622 section 3)")


def parse_jid(text: str) -> Jid:
    """``text`` as a JID. Raises JidError for an empty domain or part, a part over 1023
    octets, whitespace or a forbidden character in the localpart, a control character."""
    if not isinstance(text, str) or not text:
        raise JidError("empty JID")
    # RFC 7622 section 3.1: the first '/' ends the domain; the '@' before it ends the local part.
    bare, slash, resource = text.partition("/")
    local, at, domain = bare.rpartition("@")
    if slash and not resource:
        raise JidError("empty resourcepart after '/' (RFC 7622 section 3.4)")
    if at and not local:
        raise JidError("empty localpart before '@' (RFC 7622 section 3.3)")
    if not domain:
        raise JidError("empty domainpart (RFC 7622 section 3.2)")
    _check_part("localpart", local)
    _check_part("domainpart", domain)
    _check_part("resourcepart", resource)
    if any(c in _LOCAL_FORBIDDEN or c.isspace() for c in local):
        raise JidError("localpart holds a character RFC 7622 section 3.3.1 forbids")
    if any(c.isspace() or c in "@/" for c in domain):
        raise JidError("domainpart holds whitespace, '@' or '/' (RFC 7622 section 3.2)")
    return Jid(local, domain.lower().rstrip("."), resource)


@dataclass(frozen=True, slots=True)
class ConnectionRequest:
    """The credential an Annex K IQ carries; the password is never shown."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Iq:
    """An IQ stanza as far as connection requests go. ``condition``/``error_type``: an
    error's (RFC 6120 section 8.3); ``request``: the connectionRequest child, if any."""

    type: str
    id: str
    sender: str = ""
    to: str = ""
    request: ConnectionRequest | None = None
    condition: str = ""
    error_type: str = ""
    child_ns: str = ""  # namespace of the first payload child (an IQ get/set names what it asks)


def _attrs(iq_type: str, iq_id: str, sender: str, to: str) -> str:
    parts = [f"type={quoteattr(iq_type)}", f"id={quoteattr(iq_id)}"]
    if sender:
        parts.append(f"from={quoteattr(sender)}")
    if to:
        parts.append(f"to={quoteattr(to)}")
    return " ".join(parts)


def build_connection_request(iq_id: str, sender: str, to: str, username: str, password: str) -> str:
    """The Annex K.2.2 IQ ``set`` from ``sender`` (may be empty: the server stamps it) to
    the phone's JID ``to``. Raises JidError for a malformed ``to``."""
    parse_jid(to)
    return (f"<iq {_attrs('set', iq_id, sender, to)}>"
            f"<connectionRequest xmlns='{NS_CONNREQ}'>"
            f"<username>{escape(username)}</username><password>{escape(password)}</password>"
            "</connectionRequest></iq>")


def build_result(request: Iq) -> str:
    """The IQ ``result`` answering ``request`` (RFC 6120 section 8.2.3)."""
    return f"<iq {_attrs('result', request.id, request.to, request.sender)}/>"


def build_error(request: Iq, condition: str) -> str:
    """The IQ ``error`` answering ``request`` with a stanza error ``condition``. For a
    connection request, the child is echoed empty: the credential never goes back."""
    err_type = _ERROR_TYPES.get(condition, "cancel")
    echo = ""
    if request.request is not None:
        echo = f"<connectionRequest xmlns='{NS_CONNREQ}'><username/><password/></connectionRequest>"
    return (f"<iq {_attrs('error', request.id, request.to, request.sender)}>{echo}"
            f"<error type='{err_type}'><{condition} xmlns='{NS_STANZAS}'/></error></iq>")


def _text(element: etree._Element | None) -> str:
    return "" if element is None else "".join(str(t) for t in element.itertext())


def parse_iq(data: str | bytes) -> Iq:
    """Read an IQ stanza. Raises StanzaError: too large, not XML, a DTD, not an ``iq``, no or an
    unknown ``type``, no ``id``, a connectionRequest without username or password."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > MAX_STANZA:
        raise StanzaError(f"stanza larger than {MAX_STANZA} bytes")
    try:
        root = etree.fromstring(raw, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise StanzaError(f"not XML: {exc}") from None
    if getattr(root.getroottree().docinfo, "doctype", ""):
        raise StanzaError("document type declaration in a stanza (RFC 6120 section 11.1 forbids them)")
    if etree.QName(root).localname != "iq":
        raise StanzaError(f"not an iq stanza: <{etree.QName(root).localname}>")
    iq_type = root.get("type", "")
    if iq_type not in ("get", "set", "result", "error"):
        raise StanzaError(f"iq type {iq_type!r} is not get, set, result or error (RFC 6120 section 8.2.3)")
    iq_id = root.get("id", "")
    if not iq_id:
        raise StanzaError("iq without id (RFC 6120 section 8.2.3)")
    request = None
    child_ns = ""
    condition = error_type = ""
    for child in root:
        qname = etree.QName(child)
        if qname.localname == "error":
            error_type = child.get("type", "")
            for cond in child:
                cq = etree.QName(cond)
                if cq.namespace == NS_STANZAS and cq.localname != "text":
                    condition = cq.localname
                    break
            continue
        if not child_ns:
            child_ns = qname.namespace or ""
        if qname.namespace == NS_CONNREQ and qname.localname == "connectionRequest":
            user = child.find(f"{{{NS_CONNREQ}}}username")
            pw = child.find(f"{{{NS_CONNREQ}}}password")
            if iq_type == "set":
                if user is None or pw is None:
                    raise StanzaError("connectionRequest without username or password (TR-069 Annex K.2.2)")
                request = ConnectionRequest(_text(user), _text(pw))
    if iq_type == "error" and not condition:
        condition = "undefined-condition"  # RFC 6120 section 8.3.3.21: the catch-all
    return Iq(iq_type, iq_id, root.get("from", ""), root.get("to", ""), request, condition, error_type, child_ns)


def parse_allowed_jids(value: str) -> tuple[str, ...]:
    """``Device.ManagementServer.ConnReqAllowedJabberIDs``: a comma-separated list.
    Raises JidError naming the entry that is not a JID."""
    entries = tuple(v.strip() for v in value.split(",") if v.strip())
    for entry in entries:
        try:
            parse_jid(entry)
        except JidError as exc:
            raise JidError(f"ConnReqAllowedJabberIDs entry {entry!r}: {exc}") from None
    return entries


def allowed_sender(sender: str, allowed: Iterable[str]) -> bool:
    """Whether ``sender`` may send connection requests: an empty list allows anyone
    (TR-181 ConnReqAllowedJabberIDs); an entry with a resource matches that full JID, a
    bare entry any resource of it."""
    entries = list(allowed)
    if not entries:
        return True
    try:
        who = parse_jid(sender)
    except JidError:
        return False
    for entry in entries:
        try:
            jid = parse_jid(entry)
        except JidError:
            continue
        if jid.resource and jid == who:
            return True
        if not jid.resource and jid.bare == who.bare:
            return True
    return False


@dataclass(frozen=True, slots=True)
class Verdict:
    """A phone's answer: ``ok`` (IQ result, then a session), else the error ``condition``."""

    ok: bool
    condition: str = ""


def phone_verdict(iq: Iq, *, username: str, password: str, allowed: Iterable[str]) -> Verdict:
    """What a phone with connection-request credential ``username``/``password`` and
    ConnReqAllowedJabberIDs ``allowed`` answers to ``iq`` (TR-069 Annex K.2.2): the
    sender is checked first, so that a stranger learns nothing about the credential."""
    if iq.request is None:
        return Verdict(False, "service-unavailable" if iq.type in ("get", "set") else "bad-request")
    if not allowed_sender(iq.sender, allowed):
        return Verdict(False, "service-unavailable")
    # Compared in constant time: the answer must not tell how much of a guess was right.
    same_user = hmac.compare_digest(iq.request.username.encode(), username.encode())
    same_pw = hmac.compare_digest(iq.request.password.encode(), password.encode())
    if not (same_user and same_pw):
        return Verdict(False, "not-authorized")
    return Verdict(True)
