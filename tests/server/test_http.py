import gzip
import zlib

import pytest

from acs_security.server.http import BodyError, decode_body


def test_identity_within_limit():
    assert decode_body(b"abc", None, 10) == b"abc"


def test_identity_over_limit():
    with pytest.raises(BodyError) as exc:
        decode_body(b"x" * 11, "identity", 10)
    assert exc.value.status == 413


def test_gzip_and_both_deflate_forms():
    body = b"<soap/>" * 100
    assert decode_body(gzip.compress(body), "gzip", 10_000) == body
    assert decode_body(zlib.compress(body), "deflate", 10_000) == body
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    raw_deflate = raw.compress(body) + raw.flush()
    assert decode_body(raw_deflate, "deflate", 10_000) == body


def test_compressed_bomb_is_capped_without_inflating_it_all():
    bomb = gzip.compress(b"\0" * (50 * 1024 * 1024))
    assert len(bomb) < 100_000
    with pytest.raises(BodyError) as exc:
        decode_body(bomb, "gzip", 1024 * 1024)
    assert exc.value.status == 413


@pytest.mark.parametrize("data, encoding, status", [
    (b"not gzip at all", "gzip", 400),
    (gzip.compress(b"hello")[:-6], "gzip", 400),
    (b"x", "br", 415),
])
def test_bad_encodings(data, encoding, status):
    with pytest.raises(BodyError) as exc:
        decode_body(data, encoding, 1000)
    assert exc.value.status == status
