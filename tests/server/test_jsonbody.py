"""Strict JSON request bodies (issue 13.4): each hostile body refused precisely, before or
while parsing, and never a RecursionError or a ValueError escaping."""

from __future__ import annotations

import json

import pytest

from acs_security.server.jsonbody import MAX_DEPTH, JsonBodyError, json_depth, parse_json_body


@pytest.mark.parametrize("raw, depth", [
    (b"1", 0), (b"[]", 1), (b'{"a": [1, {"b": []}]}', 4), (b'["[[[[", "{{{"]', 1),
    (b'{"a": "\\"[[["}', 1), (b"]]]", 0), (b"[" * 100_000 + b"]" * 100_000, 100_000),
])
def test_depth_is_measured_on_the_bytes_ignoring_strings(raw: bytes, depth: int) -> None:
    assert json_depth(raw) == depth


def test_100000_levels_are_refused_before_parsing() -> None:
    for raw in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
                b"[" * 100_000):  # not even closed: refused for its depth, not parsed
        with pytest.raises(JsonBodyError) as err:
            parse_json_body(raw)
        assert err.value.title == "too deeply nested" and "100000 levels" in str(err.value)


def test_the_limit_itself_is_accepted() -> None:
    raw = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert json_depth(raw) == MAX_DEPTH
    parse_json_body(raw)
    with pytest.raises(JsonBodyError):
        parse_json_body(b"[" + raw + b"]")


@pytest.mark.parametrize("raw, title, words", [
    (b'{"policy": 1' + b"0" * 5000 + b"}", "number out of range", "5001 digits"),
    (b'[123456789012345678901]', "number out of range", "21 digits"),
    (b'{"n": 1e400}', "number out of range", "1e400"),
    (b'{"n": -1e400}', "number out of range", "-1e400"),
    (b'{"n": NaN}', "malformed JSON", "NaN is not a JSON number"),
    (b'[Infinity]', "malformed JSON", "Infinity"),
    (b'{"policy": "a", "policy": "b"}', "duplicate key", "'policy' appears twice"),
    (b'{"policy": "\\ud800"}', "malformed JSON", "lone surrogate"),
    (b'{"\\udc00": 1}', "malformed JSON", "a key holds a lone surrogate"),
    (b'["ok", ["\\udbff"]]', "malformed JSON", "lone surrogate"),
    (b'"\\ud800"', "malformed JSON", "lone surrogate"),
    (b'{"policy": "\xff"}', "malformed JSON", "not UTF-8: byte 0xff at offset 12"),
    (b'\xef\xbb\xbf{}', "malformed JSON", "byte order mark"),
    (b'{"a": }', "malformed JSON", "Expecting value"),
])
def test_hostile_values_are_refused_with_what_is_wrong(raw: bytes, title: str, words: str) -> None:
    with pytest.raises(JsonBodyError) as err:
        parse_json_body(raw)
    assert err.value.title == title and words in str(err.value)


def test_ordinary_bodies_pass_unchanged() -> None:
    body = {"policy": "[settings]\nFirewall = \"Enabled\"\n", "select": "all", "force": ["a", "b"],
            "max_in_progress": 100, "max_fault_rate": 0.2, "dry_run": True, "emoji": "\U0001F600",
            "big": 2**63 - 1, "neg": -(10**19)}
    assert parse_json_body(json.dumps(body).encode()) == body
    assert parse_json_body(json.dumps(body, ensure_ascii=False).encode()) == body
    assert parse_json_body(b"") is None and parse_json_body(b" \n") is None
