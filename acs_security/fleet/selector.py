"""Target selectors: which devices a job is for.

Grammar (terms joined by ``;`` or `` and ``, all must hold)::

    all
    product_class=CP-8851-3PCC        (also: model=, pc=; a comma list matches any)
    firmware=sip88xx.12-*             (glob; also: software_version=, sw=)
    firmware>=11.3(7)                 (range: >=, >, <=, <, on the parsed release)
    serial=FCH1,FCH2                  (a comma list; the CLI turns serial=@FILE into a list)
    tag=pilot
    device=00000C-CP%2D8851%2D3PCC-FCH1

Pure: parsing gives a :class:`Selector`, whose ``matches`` is tested on device facts.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass

from acs_security.mapping.paths import parse_firmware

__all__ = ["Selector", "SelectorError", "parse_selector"]

_KEYS = {
    "product_class": "product_class", "model": "product_class", "pc": "product_class",
    "firmware": "firmware", "software_version": "firmware", "sw": "firmware",
    "serial": "serial", "serials": "serial", "tag": "tag", "device": "device",
}
_TERM = re.compile(r"^\s*(?P<key>[a-z_]+)\s*(?P<op>>=|<=|!=|=|>|<)\s*(?P<value>.*?)\s*$")


class SelectorError(ValueError):
    """A selector that cannot be parsed; the message says which term and why."""


@dataclass(frozen=True, slots=True)
class Term:
    key: str
    op: str
    values: tuple[str, ...]
    release: tuple[int, int, int] | None = None

    def matches(self, product_class: str, firmware: str | None, serial: str,
                tags: Sequence[str], device_id: str) -> bool:
        if self.key == "firmware" and self.release is not None:
            have = parse_firmware(firmware or "")
            if have is None:
                return False
            return {
                ">=": have >= self.release, ">": have > self.release,
                "<=": have <= self.release, "<": have < self.release,
            }[self.op]
        if self.key == "product_class":
            hit = product_class.casefold() in {v.casefold() for v in self.values}
        elif self.key == "firmware":
            hit = firmware is not None and any(fnmatch.fnmatchcase(firmware, v) for v in self.values)
        elif self.key == "serial":
            hit = serial in self.values
        elif self.key == "tag":
            hit = any(v in tags for v in self.values)
        else:
            hit = device_id in self.values
        return hit if self.op == "=" else not hit


@dataclass(frozen=True, slots=True)
class Selector:
    text: str
    terms: tuple[Term, ...]

    @property
    def everything(self) -> bool:
        return not self.terms

    def matches(self, *, product_class: str, firmware: str | None, serial: str,
                tags: Sequence[str] = (), device_id: str = "") -> bool:
        return all(t.matches(product_class, firmware, serial, tags, device_id) for t in self.terms)


def parse_selector(text: str) -> Selector:
    """Parse a selector. Raises SelectorError naming the term that is wrong."""
    source = text.strip()
    if not source:
        raise SelectorError("empty selector: use 'all' to target every device")
    if source.lower() == "all":
        return Selector("all", ())
    parts = [p for p in re.split(r";|\s+and\s+", source) if p.strip()]
    terms = []
    for part in parts:
        match = _TERM.match(part)
        if match is None:
            raise SelectorError(f"term {part.strip()!r} is not KEY=VALUE (keys: {', '.join(sorted(set(_KEYS)))})")
        key = _KEYS.get(match["key"])
        if key is None:
            raise SelectorError(f"unknown key {match['key']!r} in {part.strip()!r}; "
                                f"use one of {', '.join(sorted(_KEYS))}")
        op, value = match["op"], match["value"]
        if not value:
            raise SelectorError(f"term {part.strip()!r} has no value")
        if op in (">=", ">", "<=", "<"):
            if key != "firmware":
                raise SelectorError(f"{op} only applies to firmware, not {match['key']}")
            release = parse_firmware(value)
            if release is None:
                raise SelectorError(f"{value!r} is not a firmware release such as 11.3(7) or 12-0-1")
            terms.append(Term(key, op, (value,), release))
            continue
        values = tuple(v.strip() for v in value.split(",") if v.strip())
        if not values:
            raise SelectorError(f"term {part.strip()!r} has no value")
        terms.append(Term(key, op, values))
    return Selector(source, tuple(terms))
