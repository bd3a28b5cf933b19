"""Outside text: cleaned where it enters, escaped where it leaves (terminals, logs)."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import pytest

from receptionist.logs import setup_logging
from receptionist.untrusted import clean, printable


def test_clean_removes_controls_strips_and_bounds() -> None:
    assert clean(" +9198\x00765\r\n43210\x1b[31m ", 64) == "+919876543210[31m"
    assert clean("a\u2028b\u0085c", 64) == "abc"
    assert clean("x" * 100, 10) == "x" * 10
    assert clean("नमस्ते", 64) == "नमस्ते"  # letters of any script stay


def test_printable_shows_every_control_as_an_escape() -> None:
    assert printable("CA1\nFORGED") == "CA1\\x0aFORGED"
    assert printable("\x1b[2J\r\x00") == "\\x1b[2J\\x0d\\x00"
    assert printable("a\u2028b") == "a\\u2028b"
    assert printable("₹ 450, नमस्ते") == "₹ 450, नमस्ते"


@pytest.fixture(autouse=True)
def _no_handler_left() -> Iterator[None]:
    yield
    logging.getLogger().handlers.clear()


def test_a_log_line_cannot_be_forged_by_a_value(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging()
    forged = "CA1\n01:02:03 ERROR   receptionist.call: FORGED LOG LINE"
    logging.getLogger("receptionist.call").warning("call %s from %s", forged, "\x1b[31m+91\r")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert "\\x0a01:02:03" in lines[0] and "\\x1b[31m+91\\x0d" in lines[0]


def test_a_traceback_keeps_its_lines(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging()
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("x").exception("failed for %s", "a\nb")
    text = capsys.readouterr().err
    assert "failed for a\\x0ab" in text and "Traceback (most recent call last):\n" in text


def test_the_handler_writes_to_the_current_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    """A runner that swaps and closes stderr after set-up must not make logging raise."""
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    setup_logging()
    first.close()
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("x").warning("still heard")
    assert second.getvalue().endswith("x: still heard\n"), second.getvalue()
