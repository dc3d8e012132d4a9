"""SOAP 1.1 envelopes for CWMP: safe parsing and fast building (TR-069 3.4, Annex A).

``parse_envelope(bytes)`` returns ``None`` for an empty HTTP body (the CPE's "empty POST",
TR-069 3.7.1), or an :class:`Envelope` whose ``message`` is a dataclass of
:mod:`acs_security.cwmp.messages` (``None`` for an envelope with an empty Body). Nothing but
:class:`CwmpProtocolError` leaves it: ``http_status`` 400 (413 over the size limit) for a body
that is not a usable SOAP envelope, fault 8003 for CWMP content that is wrong.

Hostile input (DESIGN.md "Bad input and faults"): the size limit is checked before parsing; a
DOCTYPE (and so every entity declaration: billion laughs, external entities) is refused
outright, and the parser resolves no entity, loads no DTD and opens no network; NUL bytes are
refused (CWMP is UTF-8 in practice, and a UTF-16 body could hide a DOCTYPE from the byte scan);
libxml2's own hard limits stay on (no ``huge_tree``); depth and element count are checked
against :class:`Limits` before the tree is walked.

``build_envelope(message, namespace=...)`` writes the envelope as text (see ``encode``) in the
namespace given, which must be the one the CPE used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lxml import etree

from acs_security.cwmp import messages as m
from acs_security.cwmp.decode import decode_body, decode_fault_detail
from acs_security.cwmp.encode import encode_body, esc
from acs_security.cwmp.errors import CwmpProtocolError, MessageValidationError
from acs_security.cwmp.namespaces import (
    CWMP_1_0,
    CWMP_1_1,
    CWMP_1_2,
    CWMP_1_3,
    CWMP_1_4,
    NAMESPACES,
    SOAP_ENC,
    SOAP_ENV,
    XSD,
    XSI,
)
from acs_security.cwmp.values import parse_value

__all__ = [
    "CONTENT_TYPE",
    "CWMP_1_0", "CWMP_1_1", "CWMP_1_2", "CWMP_1_3", "CWMP_1_4",
    "DEFAULT_LIMITS",
    "Envelope",
    "Limits",
    "NAMESPACES",
    "build_envelope",
    "parse_envelope",
    "parse_xml",
]

#: Content-Type of an HTTP message carrying an envelope (TR-069 3.4.1: text/xml).
CONTENT_TYPE = 'text/xml; charset="utf-8"'

_NAMESPACE_SET = frozenset(NAMESPACES)
_ENVELOPE = f"{{{SOAP_ENV}}}Envelope"
_HEADER = f"{{{SOAP_ENV}}}Header"
_BODY = f"{{{SOAP_ENV}}}Body"
_FAULT = f"{{{SOAP_ENV}}}Fault"
_MUST_UNDERSTAND = f"{{{SOAP_ENV}}}mustUnderstand"
_SOAP_12_ENV = "http://www.w3.org/2003/05/soap-envelope"
# Header elements we know; NoMoreRequests is CWMP 1.0's deprecated header, read and ignored.
_HEADER_NAMES = frozenset(
    {"ID", "HoldRequests", "SessionTimeout", "SupportedCWMPVersions", "UseCWMPVersion",
     "NoMoreRequests"}
)
_ENVELOPE_START = re.compile(rb"<([A-Za-z_][\w.-]*:)?Envelope[\s>/]")

# One parser, configured once and never changed: lxml serialises concurrent use of a parser.
_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
    collect_ids=False,
)


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits on what :func:`parse_envelope` accepts.

    * ``max_bytes``: 1 MiB by default. A phone's whole-tree GetParameterValuesResponse is
      a few hundred kB; anything near a MiB is not a phone.
    * ``max_depth``: 24 elements deep. The deepest CWMP structure (a SetParameterValues
      fault detail or an AccessList) is 7 deep.
    * ``max_elements``: 100 000, a whole data model's GetParameterNamesResponse with room.
    * ``max_attributes``: 100 000 in the whole document (namespace declarations are not
      attributes). CWMP puts at most three on an element (xsi:type, soap-enc:arrayType,
      mustUnderstand), on far fewer elements than the element limit allows.
    """

    max_bytes: int = 1024 * 1024
    max_depth: int = 24
    max_elements: int = 100_000
    max_attributes: int = 100_000
    _depth_probe: etree.XPath = field(init=False, repr=False, compare=False)
    _count: etree.XPath = field(init=False, repr=False, compare=False)
    _count_attributes: etree.XPath = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_depth", "max_elements", "max_attributes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise MessageValidationError(f"Limits: {name} must be a positive int")
        # Compiled once per Limits: true when an element sits deeper than max_depth.
        probe = etree.XPath("boolean(/" + "/".join(["*"] * (self.max_depth + 1)) + ")")
        object.__setattr__(self, "_depth_probe", probe)
        object.__setattr__(self, "_count", etree.XPath("count(//*)"))
        object.__setattr__(self, "_count_attributes", etree.XPath("count(//@*)"))


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Envelope:
    """A parsed envelope: the message (``None`` for an empty Body) and the CWMP headers.

    ``namespace`` is the CWMP namespace the envelope used (from the RPC element, the fault
    detail or the headers), ``None`` when nothing in it was CWMP-qualified.
    """

    message: m.Message | None
    namespace: str | None
    cwmp_id: str | None = None
    hold_requests: bool | None = None
    session_timeout: int | None = None
    supported_versions: str | None = None
    use_version: str | None = None


def _http_error(message: str, status: int = 400) -> CwmpProtocolError:
    return CwmpProtocolError(message, http_status=status)


def _xml_error(data: bytes, exc: Exception) -> CwmpProtocolError:
    text = str(exc)
    if "Extra content at the end of the document" in text:
        count = len(_ENVELOPE_START.findall(data))
        if count > 1:
            return _http_error(
                f"the body holds {count} SOAP envelopes; one envelope per HTTP message "
                "(the ACS's MaxEnvelopes is 1)"
            )
        return _http_error("content after the end of the SOAP envelope")
    return _http_error(f"malformed XML: {text}")


def _check_limits(root: etree._Element, size: int, limits: Limits) -> None:
    if limits._depth_probe(root):
        raise _http_error(f"the XML is nested deeper than {limits.max_depth} elements")
    # A body of n bytes holds at most n // 4 elements ("<a/>"): count only when it matters.
    if size // 4 > limits.max_elements:
        count = limits._count(root)
        assert isinstance(count, float)  # XPath count() is a number
        count = int(count)
        if count > limits.max_elements:
            raise _http_error(f"the XML has {count} elements, the limit is "
                              f"{limits.max_elements}")
    # ... and at most n // 5 attributes (' a=""').
    if size // 5 > limits.max_attributes:
        attributes = limits._count_attributes(root)
        assert isinstance(attributes, float)  # XPath count() is a number
        if attributes > limits.max_attributes:
            raise _http_error(f"the XML has {int(attributes)} attributes, the limit is "
                              f"{limits.max_attributes}")


def _namespace_of(tag: str) -> str | None:
    return tag[1:tag.index("}")] if tag[0] == "{" else None


def _read_header(header: etree._Element, values: dict[str, object]) -> None:
    for child in header:
        tag = child.tag
        if type(tag) is not str:
            continue
        ns = _namespace_of(tag)
        local = tag[tag.index("}") + 1:] if ns else tag
        if ns not in _NAMESPACE_SET or local not in _HEADER_NAMES:
            if child.get(_MUST_UNDERSTAND, "0").strip() in ("1", "true"):
                raise CwmpProtocolError(f"header <{local}> must be understood but is unknown",
                                        fault_code=8003)
            continue
        values.setdefault("namespace", ns)
        text = child.text or ""
        try:
            if local == "ID":
                values["cwmp_id"] = text
            elif local == "HoldRequests":
                values["hold_requests"] = parse_value("boolean", text)
            elif local == "SessionTimeout":
                values["session_timeout"] = parse_value("unsignedInt", text)
            elif local == "SupportedCWMPVersions":
                values["supported_versions"] = text.strip()
            elif local == "UseCWMPVersion":
                values["use_version"] = text.strip()
        except MessageValidationError as exc:
            raise CwmpProtocolError(f"header <{local}>: {exc}", fault_code=8003) from None


def _read_body(body: etree._Element) -> tuple[m.Message | None, str | None]:
    rpc = None
    for child in body:
        if type(child.tag) is not str:
            continue
        if rpc is not None:
            raise CwmpProtocolError("the SOAP Body holds more than one element; CWMP sends "
                                    "one RPC per envelope", fault_code=8003)
        rpc = child
    if rpc is None:
        return None, None
    tag = rpc.tag
    if tag == _FAULT:
        return _read_fault(rpc)
    ns = _namespace_of(tag)
    if ns not in _NAMESPACE_SET:
        raise CwmpProtocolError(f"Body element {tag} is not in a CWMP namespace",
                                fault_code=8003)
    return decode_body(tag[tag.index("}") + 1:], rpc), ns


def _read_fault(fault: etree._Element) -> tuple[m.Message, str | None]:
    for child in fault:
        if type(child.tag) is str and child.tag.rpartition("}")[2] == "detail":
            for detail in child:
                tag = detail.tag
                if type(tag) is str and tag.endswith("}Fault") and \
                        _namespace_of(tag) in _NAMESPACE_SET:
                    return decode_fault_detail(detail), _namespace_of(tag)
    raise CwmpProtocolError("SOAP Fault without a cwmp:Fault detail", fault_code=8003)


def parse_xml(data: bytes, limits: Limits = DEFAULT_LIMITS, *, what: str = "a CWMP message") -> etree._Element:
    """Parse an XML document from the network with the hostile-input checks of the module
    docstring: size first, then NUL bytes and DOCTYPE / entity declarations by a byte scan,
    then the safe parser, then depth, element and attribute counts. ``what`` names the
    document in the errors. The northbound SOAP face uses it too (server/soap.py).

    Raises:
        CwmpProtocolError: ``http_status`` 413 over ``limits.max_bytes``, else 400, saying
        what is wrong (never a fault code: nothing of the document was read yet).
    """
    size = len(data)
    if size > limits.max_bytes:
        raise _http_error(f"the body is {size} bytes, the limit is {limits.max_bytes}", 413)
    if b"\x00" in data:
        raise _http_error("NUL byte in the body (only UTF-8 or ASCII-compatible XML is accepted)")
    # One scan for "<!" (absent from nearly every CWMP body), then the two precise ones.
    if b"<!" in data and (b"<!DOCTYPE" in data or b"<!ENTITY" in data):
        raise _http_error(f"a DOCTYPE or entity declaration is not allowed in {what}")
    try:
        root = etree.fromstring(data, _PARSER)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise _xml_error(data, exc) from None
    # Belt and braces after the byte scan (a UTF-7 body hides "<!" from it); lxml-stubs'
    # DocInfo lacks doctype.
    if root.getroottree().docinfo.doctype:  # type: ignore[union-attr]
        raise _http_error(f"a DOCTYPE is not allowed in {what}")
    _check_limits(root, size, limits)
    return root


def parse_envelope(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Envelope | None:
    """Parse one HTTP body from a CPE (or, in the simulator, from the ACS).

    Returns ``None`` for an empty (or whitespace-only) body, which is the CPE's empty POST.

    Raises:
        CwmpProtocolError: ``http_status`` 413 over ``limits.max_bytes``; 400 for
        malformed XML, a DOCTYPE, NUL bytes, limits exceeded, a root that is not a SOAP 1.1
        Envelope, several envelopes, a missing Body; ``fault_code`` 8003 (with ``cwmp_id`` and
        ``namespace`` when known) for an envelope whose CWMP content is invalid.
    """
    if not isinstance(data, bytes):
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        else:
            raise _http_error(f"the body must be bytes, not {type(data).__name__}")
    if not data or data.isspace():
        if len(data) > limits.max_bytes:
            raise _http_error(f"the body is {len(data)} bytes, the limit is {limits.max_bytes}", 413)
        return None
    root = parse_xml(data, limits)
    if root.tag != _ENVELOPE:
        if root.tag == f"{{{_SOAP_12_ENV}}}Envelope":
            raise _http_error("SOAP 1.2 envelope; CWMP uses SOAP 1.1")
        raise _http_error(f"the root element is {root.tag}, not a SOAP 1.1 Envelope")
    header = body = None
    for child in root:
        tag = child.tag
        if tag == _BODY and body is None:
            body = child
        elif tag == _HEADER and header is None and body is None:
            header = child
        elif type(tag) is str:
            raise _http_error(f"unexpected {tag} in the SOAP Envelope")
    if body is None:
        raise _http_error("the SOAP Envelope has no Body")
    values: dict[str, object] = {}
    try:
        if header is not None:
            _read_header(header, values)
        message, body_ns = _read_body(body)
    except CwmpProtocolError as exc:
        exc.cwmp_id = values.get("cwmp_id")  # type: ignore[assignment]
        exc.namespace = values.get("namespace") or _cwmp_ns_declared(root)  # type: ignore
        raise
    namespace = body_ns or values.pop("namespace", None) or _cwmp_ns_declared(root)
    values.pop("namespace", None)
    return Envelope(message, namespace, **values)  # type: ignore[arg-type]


def _cwmp_ns_declared(root: etree._Element) -> str | None:
    for ns in root.nsmap.values():
        if ns in _NAMESPACE_SET:
            return ns
    return None


def _header_xml(cwmp_id: str | None, hold_requests: bool | None, session_timeout: int | None,
                supported_versions: str | None, use_version: str | None) -> str:
    parts = ["<soap-env:Header>"]
    if cwmp_id is not None:
        parts.append(f'<cwmp:ID soap-env:mustUnderstand="1">{esc(cwmp_id)}</cwmp:ID>')
    if hold_requests is not None:
        parts.append(f'<cwmp:HoldRequests soap-env:mustUnderstand="1">'
                     f'{"1" if hold_requests else "0"}</cwmp:HoldRequests>')
    if session_timeout is not None:
        parts.append(f'<cwmp:SessionTimeout soap-env:mustUnderstand="0">{session_timeout}'
                     '</cwmp:SessionTimeout>')
    if supported_versions is not None:
        # TR-069 A.4 / cwmp-1-4.xsd: mustUnderstand MUST be 0 for SupportedCWMPVersions.
        parts.append('<cwmp:SupportedCWMPVersions soap-env:mustUnderstand="0">'
                     f'{esc(supported_versions)}</cwmp:SupportedCWMPVersions>')
    if use_version is not None:
        parts.append(f'<cwmp:UseCWMPVersion soap-env:mustUnderstand="1">{esc(use_version)}'
                     '</cwmp:UseCWMPVersion>')
    parts.append("</soap-env:Header>")
    return "".join(parts)


_STD_NS = {"soap-env": SOAP_ENV, "soap-enc": SOAP_ENC, "xsd": XSD, "xsi": XSI}
_ENVELOPE_OPEN = {
    ns: ('<?xml version="1.0" encoding="UTF-8"?>\n'
         f'<soap-env:Envelope xmlns:soap-env="{SOAP_ENV}" xmlns:soap-enc="{SOAP_ENC}" '
         f'xmlns:xsd="{XSD}" xmlns:xsi="{XSI}" xmlns:cwmp="{ns}">')
    for ns in NAMESPACES
}
_STD_NS_BY_CWMP = {ns: {**_STD_NS, "cwmp": ns} for ns in NAMESPACES}


def build_envelope(
    message: m.Message | None,
    *,
    namespace: str,
    cwmp_id: str | None = None,
    hold_requests: bool | None = None,
    session_timeout: int | None = None,
    supported_versions: str | None = None,
    use_version: str | None = None,
) -> bytes:
    """The UTF-8 bytes of a SOAP envelope carrying ``message`` (``None``: an empty Body).

    Header elements are written for the arguments that are not ``None``.

    Raises:
        MessageValidationError: for a namespace that is not one of :data:`NAMESPACES`, a
        message that cannot be built (an UnknownMessage), a bad header value, or text holding
        a character XML 1.0 cannot carry (the error names the character, not the text).
    """
    opening = _ENVELOPE_OPEN.get(namespace)
    if opening is None:
        raise MessageValidationError(f"{namespace!r} is not a CWMP namespace")
    if session_timeout is not None and (
        not isinstance(session_timeout, int) or isinstance(session_timeout, bool)
        or not 0 <= session_timeout <= 2**32 - 1
    ):
        raise MessageValidationError("session_timeout must be an unsignedInt")
    if hold_requests is not None and not isinstance(hold_requests, bool):
        raise MessageValidationError("hold_requests must be a bool")
    for name, value in (("cwmp_id", cwmp_id), ("supported_versions", supported_versions),
                        ("use_version", use_version)):
        if value is not None and not isinstance(value, str):
            raise MessageValidationError(f"{name} must be a str")
    out = [opening]
    if cwmp_id is not None or hold_requests is not None or session_timeout is not None \
            or supported_versions is not None or use_version is not None:
        out.append(_header_xml(cwmp_id, hold_requests, session_timeout, supported_versions,
                               use_version))
    if message is None:
        out.append("<soap-env:Body/></soap-env:Envelope>")
    else:
        out.append("<soap-env:Body>")
        encode_body(message, out, _STD_NS_BY_CWMP[namespace])
        out.append("</soap-env:Body></soap-env:Envelope>")
    return "".join(out).encode("utf-8")
