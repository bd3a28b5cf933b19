"""Log lines: JSON and text, the call's context on every line, tracebacks, no forged lines."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from receptionist import logctx
from receptionist.config import load_settings
from receptionist.logs import log_format, setup_logging

log = logging.getLogger("receptionist.test")


class Captured:
    """What the log handler wrote to stderr (pytest's capture, read as often as needed)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.text = ""

    def getvalue(self) -> str:
        self.text += self.capsys.readouterr().err
        return self.text


@pytest.fixture
def stderr(capsys: pytest.CaptureFixture[str]) -> Iterator[Captured]:
    yield Captured(capsys)
    logging.getLogger().handlers.clear()


def json_lines(out: Captured) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_json_line_has_the_fields(stderr: Captured) -> None:
    setup_logging(json_lines=True)
    log.info("turn %d done", 3, extra={"latency_ms": 412.5})
    [entry] = json_lines(stderr)
    assert entry["level"] == "INFO" and entry["logger"] == "receptionist.test"
    assert entry["message"] == "turn 3 done" and entry["latency_ms"] == 412.5
    assert entry["timestamp"].endswith("Z")  # UTC, ISO 8601
    stamp = datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00"))
    assert stamp.utcoffset() == timedelta(0)
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 3600  # now, not local time
    assert "call_sid" not in entry  # outside a call: no call fields


def test_context_fields_on_every_line_of_the_work(stderr: Captured) -> None:
    setup_logging(json_lines=True)
    with logctx.bound(call_sid="CA1", tenant="bakery", stream_sid="MZ1"):
        log.info("ours")
        logging.getLogger("httpx").warning("a library's")  # any logger, not only ours
        with logctx.bound(stage="analysed"):
            log.info("inner")
    log.info("after")
    lines = json_lines(stderr)
    assert [(e.get("call_sid"), e.get("tenant")) for e in lines] == [
        ("CA1", "bakery"),
        ("CA1", "bakery"),
        ("CA1", "bakery"),
        (None, None),
    ]
    assert lines[0]["stream_sid"] == "MZ1" and lines[2]["stage"] == "analysed"
    assert "stage" not in lines[1]


async def test_tasks_started_inside_a_call_carry_its_fields(stderr: Captured) -> None:
    setup_logging(json_lines=True)

    async def call(sid: str) -> None:
        logctx.bind(call_sid=sid, tenant="bakery")

        async def pump() -> None:
            await asyncio.sleep(0)
            log.info("pump of %s", sid)

        await asyncio.create_task(pump())

    await asyncio.gather(call("CA1"), call("CA2"))  # side by side: no mixing
    log.info("outside")
    lines = json_lines(stderr)
    for e in lines[:2]:
        assert e["message"] == f"pump of {e['call_sid']}"
    assert "call_sid" not in lines[2]


def test_detached_context_has_no_call_fields(stderr: Captured) -> None:
    setup_logging(json_lines=True)
    with logctx.bound(call_sid="CA1"):
        logctx.detached().run(log.info, "shared work")
    assert "call_sid" not in json_lines(stderr)[0]


def test_json_exception_is_a_field_with_the_traceback(stderr: Captured) -> None:
    setup_logging(json_lines=True)
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    [entry] = json_lines(stderr)
    assert entry["message"] == "failed" and entry["level"] == "ERROR"
    assert entry["exception"].startswith("Traceback (most recent call last):")
    assert "ValueError: boom" in entry["exception"]


def test_json_survives_a_lone_surrogate_and_odd_extras(stderr: Captured) -> None:
    """A hostile frame's "\\ud800" must not cost the log line (orjson refuses it)."""
    setup_logging(json_lines=True)
    log.warning("bad frame %s", "\ud800x", extra={"obj": object(), "n": {1: 2}})
    [entry] = json_lines(stderr)
    assert entry["message"] == "bad frame \ud800x" and entry["n"] == {"1": 2}


def test_text_line_names_the_call(stderr: Captured) -> None:
    setup_logging()
    with logctx.bound(call_sid="CA1", tenant="bakery", stream_sid="MZ1"):
        log.info("hello")
    line = stderr.getvalue()
    assert line.endswith(" receptionist.test [tenant=bakery call_sid=CA1]: hello\n"), line


@pytest.mark.parametrize("json_mode", [False, True], ids=["text", "json"])
def test_caller_text_cannot_inject_a_line(stderr: Captured, json_mode: bool) -> None:
    setup_logging(json_lines=json_mode)
    forged = "CA1\r\n12:00:00 ERROR   receptionist.call: FORGED\u2028\x1b[2J"
    with logctx.bound(call_sid=forged, tenant="x\nFORGED"):
        log.warning("caller said %s", forged)
        try:
            raise RuntimeError(forged)
        except RuntimeError:
            log.exception("in an exception too")
    out = stderr.getvalue()
    if json_mode:
        lines = json_lines(stderr)
        assert len(lines) == 2 and lines[0]["call_sid"] == forged
        return
    lines = out.splitlines()
    # every line is a record's first line or a marked traceback line; none is forged
    assert sum(not line.startswith("  | ") for line in lines) == 2, lines
    assert "FORGED" not in "".join(line for line in lines if line.startswith("12:00:00"))
    assert "\x1b" not in out and "\u2028" not in out and "\r" not in out
    assert "\\x0d\\x0a12:00:00" in lines[0]


def test_log_format_auto_is_text_on_a_terminal_json_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    for var in ("LOG_FORMAT", "LOG_JSON"):
        monkeypatch.delenv(var, raising=False)
    settings = load_settings(_env_file=None)
    assert settings.log_format == "auto" and settings.log_redact is True
    assert log_format(settings, Tty()) == "text"
    assert log_format(settings, io.StringIO()) == "json"
    assert log_format(load_settings(_env_file=None, log_json=True), Tty()) == "json"
    monkeypatch.setenv("LOG_FORMAT", "TEXT")
    assert log_format(load_settings(_env_file=None), io.StringIO()) == "text"
