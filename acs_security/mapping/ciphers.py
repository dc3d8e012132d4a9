"""TLS Cipher List: the phone's OpenSSL cipher-string grammar, checked and expanded.

Seed 000 ("Configure the Cipher List"): the value follows OpenSSL 1.1.1 ``ciphers(1)``,
but the phone supports only the keywords of Table 6 ("Supported Cipher Strings") and
individual suite names. Grammar (ciphers(1) "CIPHER LIST FORMAT"): elements separated by
``:`` (``,`` and space also accepted); an element is ``@STRENGTH``, ``@SECLEVEL=n``, or
an optional operator (``!`` delete forever, ``-`` delete, ``+`` move to end) followed by
one keyword or ``+``-joined keywords (logical AND), or one suite name. Keywords are
case-sensitive. The list must select at least one suite: we check that with the local
OpenSSL (stdlib :mod:`ssl`) and show what it selects.
"""

from __future__ import annotations

import functools
import re
import ssl
from dataclasses import dataclass

from acs_security.mapping.catalogue import CipherFacts

__all__ = ["CipherElement", "CipherExpansion", "CipherListError", "parse_cipher_list", "expand_cipher_string",
           "local_suite_names"]

_SEPARATORS = re.compile(r"[:, ]+")
_SECLEVEL = re.compile(r"^@SECLEVEL=[0-5]$")
_OPERATORS = "!-+"
# OpenSSL aliases that exist but are not in the phone's Table 6: refused with that reason.
_UNSUPPORTED_ALIASES = frozenset({
    "LOW", "EXPORT", "EXP", "RC4", "3DES", "DES", "IDEA", "RC2", "PSK", "kPSK", "kECDHEPSK", "kDHEPSK",
    "kRSAPSK", "aPSK", "SRP", "kSRP", "aSRP", "GOST94", "GOST89MAC", "kGOST", "aGOST", "aGOST01",
    "TLSv1.0", "TLSv1.1", "TLSv1.3", "DHEPSK", "ECDHEPSK", "RSAPSK", "kDH", "kDHr", "kDHd",
    "kECDHr", "kECDHe", "aECDH", "aDH", "FIPS",
})


class CipherListError(ValueError):
    """The cipher string breaks the phone's grammar or selects nothing: ``rule``, ``allowed``."""

    def __init__(self, rule: str, allowed: str) -> None:
        super().__init__(rule)
        self.rule = rule
        self.allowed = allowed


@dataclass(frozen=True, slots=True)
class CipherElement:
    """One element of a cipher string: operator ("", "!", "-", "+") and its keywords."""

    operator: str
    parts: tuple[str, ...]
    kind: str  # "keyword", "suite" or "special"


@dataclass(frozen=True, slots=True)
class CipherExpansion:
    """What a cipher string selects with the local OpenSSL."""

    cipher_string: str
    elements: tuple[CipherElement, ...]
    suites: tuple[str, ...]
    tls13_suites: tuple[str, ...]
    weak: tuple[str, ...]
    openssl_version: str


@functools.lru_cache(maxsize=1)
def local_suite_names() -> frozenset[str]:
    """Every TLS <= 1.2 suite name the local OpenSSL knows (not only the enabled ones)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
    return frozenset(c["name"] for c in ctx.get_ciphers() if c["protocol"] != "TLSv1.3")


def _allowed(facts: CipherFacts) -> str:
    return (
        "':'-separated elements, each '@STRENGTH', '@SECLEVEL=n', or an optional !, - or + "
        "followed by '+'-joined keywords of seed 000 Table 6 (" + ", ".join(facts.keywords) + ") "
        "or one OpenSSL suite name"
    )


def _unknown_part(part: str, facts: CipherFacts) -> str:
    keywords = set(facts.keywords)
    folded = {k.casefold(): k for k in keywords}
    if part.casefold() in folded:
        return f"cipher keywords are case-sensitive: {part!r} is not {folded[part.casefold()]!r}"
    if part.startswith("TLS_") and part.upper() == part:
        return f"{part!r} is a TLS 1.3 suite: TLS 1.3 suites are not chosen by the cipher list"
    for app in facts.defaults:
        if part in app.seed_names:
            index = app.seed_names.index(part)
            if index < len(app.suites):
                return f"{part!r} is the seed's spelling; the OpenSSL name is {app.suites[index]!r}"
    if part in _UNSUPPORTED_ALIASES:
        return f"{part!r} is an OpenSSL keyword the phone does not support (not in seed 000 Table 6)"
    return f"unknown cipher keyword or suite {part!r}"


def parse_cipher_list(text: str, facts: CipherFacts) -> tuple[CipherElement, ...]:
    """Check a cipher string against the phone's grammar; the elements in order.

    Raises CipherListError (never anything else) naming the offending element.
    """
    allowed = _allowed(facts)
    if len(text) > facts.max_length:
        raise CipherListError(f"{len(text)} characters; the phone takes at most {facts.max_length}", allowed)
    for char in text:
        if not (" " <= char <= "~"):
            raise CipherListError(f"character {char!r} is not allowed in a cipher string", allowed)
    keywords = set(facts.keywords)
    suites = local_suite_names() | facts.extra_suites
    elements = []
    for raw in _SEPARATORS.split(text):
        if not raw:
            continue
        if raw.startswith("@"):
            if raw == "@STRENGTH" or _SECLEVEL.match(raw):
                elements.append(CipherElement("", (raw,), "special"))
                continue
            raise CipherListError(f"{raw!r}: the only @ commands are @STRENGTH and @SECLEVEL=0..5", allowed)
        operator = raw[0] if raw[0] in _OPERATORS else ""
        body = raw[len(operator):]
        if not body:
            raise CipherListError(f"{raw!r}: operator {operator!r} without a keyword", allowed)
        if body[0] in _OPERATORS or body.startswith("@"):
            raise CipherListError(f"{raw!r}: one operator per element, and @ commands take none", allowed)
        parts = tuple(body.split("+"))
        if any(not p for p in parts):
            raise CipherListError(f"{raw!r}: '+' must join two keywords", allowed)
        kinds = []
        for part in parts:
            if part in keywords:
                kinds.append("keyword")
            elif part in suites:
                kinds.append("suite")
            else:
                raise CipherListError(f"{raw!r}: {_unknown_part(part, facts)}", allowed)
        if "suite" in kinds and len(parts) > 1:
            raise CipherListError(f"{raw!r}: a suite name cannot be joined with '+'", allowed)
        elements.append(CipherElement(operator, parts, kinds[0]))
    return tuple(elements)


def expand_cipher_string(text: str, facts: CipherFacts) -> CipherExpansion:
    """Check ``text`` and expand it with the local OpenSSL.

    Raises CipherListError when the grammar is broken or nothing is selected. An empty
    string is valid for the phone (each application then uses its defaults) but selects
    nothing itself: callers handle blank before calling this.
    """
    elements = parse_cipher_list(text, facts)
    if not any(e.kind in ("keyword", "suite") and e.operator == "" for e in elements):
        raise CipherListError("selects no cipher suite: no element adds suites (only !, - or + elements)",
                              _allowed(facts))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        ctx.set_ciphers(text)
    except ssl.SSLError:
        local_gap = sorted({p for e in elements for p in e.parts if p in facts.extra_suites or p == "SEED"})
        hint = ""
        if local_gap:
            hint = (
                f" ({', '.join(local_gap)} exist in the phone's OpenSSL {facts.phone_openssl} but not in the local "
                f"{ssl.OPENSSL_VERSION}, which cannot show them)"
            )
        raise CipherListError(f"selects no cipher suite with {ssl.OPENSSL_VERSION}{hint}", _allowed(facts)) from None
    selected = ctx.get_ciphers()
    suites = tuple(c["name"] for c in selected if c["protocol"] != "TLSv1.3")
    tls13 = tuple(c["name"] for c in selected if c["protocol"] == "TLSv1.3")
    if not suites:  # OpenSSL 3 keeps its TLS 1.3 suites whatever the list says
        raise CipherListError(f"selects no TLS 1.2 or older cipher suite with {ssl.OPENSSL_VERSION}", _allowed(facts))
    weak = tuple(
        c["name"]
        for c in selected
        if c["protocol"] != "TLSv1.3" and (c["symmetric"] is None or c["auth"] == "auth-null" or c["digest"] == "md5")
    )
    return CipherExpansion(text, elements, suites, tls13, weak, ssl.OPENSSL_VERSION)
