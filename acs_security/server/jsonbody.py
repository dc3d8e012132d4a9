"""Strict JSON for request bodies of the management API: hostile input refused before it costs.

Python's ``json.loads`` alone turns some hostile bodies into a crash or a silent surprise:
a body nested 100 000 levels deep raises RecursionError, an integer of 5 000 digits raises
ValueError (the interpreter's int conversion limit), ``NaN`` and ``Infinity`` are accepted
though RFC 8259 has no such numbers, a second ``"policy"`` key silently wins over the first,
and ``"\\ud800"`` gives a string that cannot be encoded again. :func:`parse_json_body`
refuses each with :class:`JsonBodyError` saying what is wrong:

- nesting deeper than ``max_depth`` (:data:`MAX_DEPTH`), measured on the bytes **before**
  parsing (the API's bodies are flat: an object holding strings, numbers and a list);
- text that is not UTF-8 (RFC 8259 section 8.1), a byte order mark included;
- integers of more than :data:`MAX_INT_DIGITS` digits, numbers that overflow to infinity,
  and ``NaN`` / ``Infinity`` / ``-Infinity``;
- a key given twice in one object (RFC 8259 section 4: names SHOULD be unique; which one
  would count is not defined, so the body is ambiguous);
- lone surrogates (``\\ud800`` escapes without their pair: not Unicode characters, RFC 8259
  section 8.2).

Pure: bytes in, a value or an error out.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

__all__ = ["MAX_DEPTH", "MAX_INT_DIGITS", "JsonBodyError", "json_depth", "parse_json_body"]

#: Deepest nesting of arrays and objects accepted. The API's bodies are 2 deep at most.
MAX_DEPTH = 32
#: Longest integer accepted (digits, sign excluded): 64-bit values need 20 at most.
MAX_INT_DIGITS = 20

# A JSON string: quotes around anything but a quote or backslash, or backslash escapes.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# +1 for an opening bracket, -1 for a closing one, indexed by byte value.
_DELTA = [1 if b in b"[{" else -1 if b in b"]}" else 0 for b in range(256)]
_SURROGATE = re.compile("[\ud800-\udfff]")


class JsonBodyError(ValueError):
    """A body that is not acceptable JSON; ``title`` is short, ``str()`` says what and where."""

    def __init__(self, title: str, detail: str) -> None:
        super().__init__(detail)
        self.title = title
        self.detail = detail


def json_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in ``raw`` (brackets inside strings do not
    count), without parsing it: linear time and no recursion whatever the input."""
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    return max(0, max(accumulate(map(_DELTA.__getitem__, brackets))))


def _int(text: str) -> int:
    digits = len(text) - (text[0] == "-")
    if digits > MAX_INT_DIGITS:
        raise JsonBodyError("number out of range", f"an integer of {digits} digits; at most {MAX_INT_DIGITS}")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonBodyError("number out of range", f"the number {text[:40]} is out of range")
    return value


def _constant(name: str) -> Any:
    raise JsonBodyError("malformed JSON", f"{name} is not a JSON number (RFC 8259 section 6)")


def _no_surrogate(text: str, where: str) -> None:
    if _SURROGATE.search(text):
        raise JsonBodyError("malformed JSON", f"{where} holds a lone surrogate (a \\ud800-\\udfff escape "
                                              "without its pair), which is not a Unicode character")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        _no_surrogate(key, "a key")
        if key in out:
            raise JsonBodyError("duplicate key", f"the key {key[:60]!r} appears twice in one object")
        if isinstance(value, str):
            _no_surrogate(value, f"the value of {key[:60]!r}")
        out[key] = value
    return out


def _check_arrays(value: Any) -> None:
    # Object members were checked by _object; strings directly in arrays are checked here.
    # Depth is bounded by max_depth already, so the recursion is too.
    if isinstance(value, list):
        for item in value:
            if isinstance(item, str):
                _no_surrogate(item, "a string in a list")
            else:
                _check_arrays(item)
    elif isinstance(value, dict):
        for item in value.values():
            _check_arrays(item)


def parse_json_body(raw: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value of a request body (None for an empty body).

    Raises JsonBodyError for a body nested deeper than ``max_depth``, not UTF-8, not JSON,
    or holding what the module docstring lists.
    """
    if not raw.strip():
        return None
    # Counting brackets is cheap; the scan that skips strings runs only when it could matter.
    depth = json_depth(raw) if raw.count(b"[") + raw.count(b"{") > max_depth else 0
    if depth > max_depth:
        raise JsonBodyError("too deeply nested", f"the JSON nests {depth} levels deep; at most {max_depth}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonBodyError("malformed JSON", f"not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}") from None
    if text.startswith("\ufeff"):
        raise JsonBodyError("malformed JSON", "a byte order mark starts the body (RFC 8259 section 8.1)")
    try:
        value = json.loads(text, object_pairs_hook=_object, parse_int=_int, parse_float=_float,
                           parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise JsonBodyError("malformed JSON", str(exc)) from None
    if isinstance(value, str):
        _no_surrogate(value, "the body")
    _check_arrays(value)
    return value
