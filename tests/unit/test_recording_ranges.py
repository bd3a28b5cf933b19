"""The `Range` header of a recording request (web/recordings.py): what a browser sends, and what
a hostile client might."""

from __future__ import annotations

import pytest

from receptionist.recordings.stores import StoreError, check_key
from receptionist.web.deps import WebError
from receptionist.web.recordings import MAX_RANGE, parse_range

SIZE = 10_000


@pytest.mark.parametrize(
    ("header", "span"),
    [
        (None, None),
        ("", None),
        ("bytes=0-", (0, SIZE - 1)),  # what a media element asks first
        ("bytes=100-199", (100, 199)),
        ("bytes=9990-20000", (9990, SIZE - 1)),  # past the end: up to the end
        ("bytes=-500", (SIZE - 500, SIZE - 1)),  # the last 500 bytes
        ("bytes=-999999", (0, SIZE - 1)),
        ("bytes=0-1,5-6", None),  # several ranges: the whole file is allowed
        ("items=0-5", None),
        ("bytes=-", None),
        ("bytes=a-b", None),
    ],
)
def test_ranges(header: str | None, span: tuple[int, int] | None) -> None:
    assert parse_range(header, SIZE) == span


@pytest.mark.parametrize("header", ["bytes=10000-", "bytes=50-10", "bytes=99999999999999999999-"])
def test_unsatisfiable(header: str) -> None:
    with pytest.raises(WebError) as exc:
        parse_range(header, SIZE)
    assert exc.value.status == 416


def test_an_answer_is_bounded() -> None:
    big = 50 * MAX_RANGE
    assert parse_range("bytes=0-", big) == (0, MAX_RANGE - 1)
    assert parse_range(f"bytes=0-{'9' * 40}", big) == (0, MAX_RANGE - 1)


@pytest.mark.parametrize("key", ["../etc/passwd", "a/../../b", "/abs", "", "a b", "x" * 400])
def test_a_stored_key_never_escapes_the_store(key: str) -> None:
    with pytest.raises(StoreError):
        check_key(key)
    assert check_key("bakery/2026-12-07/CA123.ogg") == "bakery/2026-12-07/CA123.ogg"
