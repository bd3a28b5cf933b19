"""bench/peer_pipecat.py's pure parts: the bot it writes is valid Python built from Pipecat's own
parts, and the figures, the degradation rule and the ours/peer table come out right from
known call results. (The install and the run itself need the network and minutes: not here.)"""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

from receptionist.sim.caller import CallResult, TranscriptEvent

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def peer() -> ModuleType:
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module("peer_pipecat")
    finally:
        sys.path.remove(str(BENCH))


def _call(
    *,
    greeting_ms: float | None = 200.0,
    greeted: bool = True,
    response_ms: list[float] | None = None,
    ok: bool = True,
    duration_s: float = 10.0,
    agent_audio_ms: float = 1000.0,
    lag_ms: float = 0.0,
) -> CallResult:
    events = [TranscriptEvent(t_ms=greeting_ms or 0.0, kind="agent_audio_start", text="greeting")]
    if not greeted:  # the first agent audio was already a reply
        events = [TranscriptEvent(t_ms=9000.0, kind="agent_audio_start", text="reply to turn 1")]
    return CallResult(
        call_sid="CAtest",
        ok=ok,
        error=None if ok else "closed 1011",
        greeting_ms=greeting_ms,
        response_ms=list(response_ms or []),
        agent_audio_ms=agent_audio_ms,
        duration_s=duration_s,
        max_send_lag_ms=lag_ms,
        media_received=10,
        events=events,
    )


def test_bot_source_compiles_and_uses_pipecats_own_parts(peer: ModuleType) -> None:
    code = compile(peer.BOT_SOURCE, "pipecat_bot.py", "exec")
    assert code is not None
    imported = {
        alias.name
        for node in ast.walk(ast.parse(peer.BOT_SOURCE))
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert {
        "ExotelFrameSerializer",
        "FastAPIWebsocketTransport",
        "GeminiLiveLLMService",
        "LLMContext",
        "LLMContextAggregatorPair",
        "LLMRunFrame",
    } <= imported
    assert "RATE = 8000" in peer.BOT_SOURCE
    # pinned, and never our own virtualenv
    assert peer.PEER_REQUIREMENTS[0] == f"pipecat-ai[google,websocket]=={peer.PIPECAT_VERSION}"
    assert all("==" in r for r in peer.PEER_REQUIREMENTS)
    assert ".work" in peer.VENV_DIR.parts and ".venv" not in peer.VENV_DIR.parts


def test_level_figures_subtract_the_doubles_delay_and_count_lost_replies(
    peer: ModuleType,
) -> None:
    calls = [
        _call(greeting_ms=100.0, response_ms=[600.0, 700.0], duration_s=10.0),
        # greeting never heard: its first audio was the first reply, so no greeting latency
        # and one reply lost
        _call(greeting_ms=9000.0, greeted=False, response_ms=[650.0], duration_s=10.0),
        _call(greeting_ms=300.0, response_ms=[], ok=False, duration_s=5.0),
    ]
    f = peer.summarise_level(
        calls,
        concurrency=3,
        turns=2,
        delay_ms=500.0,
        chunk_wait_ms=160.0,
        expected_audio_ms=2000.0,
        cpu_s=0.5,
        rss_idle=100 * 1024 * 1024,
        rss_peak=100 * 1024 * 1024 + 3 * 512 * 1024,
        wall_s=10.0,
    )
    assert f["call_seconds"] == 25.0
    assert f["cpu_ms_per_call_second"] == 20.0  # 500 ms / 25 call-seconds
    assert f["cores_busy_mean"] == 0.05
    assert f["rss_kb_per_call"] == 512.0
    # 600, 700, 650 minus 500
    assert f["responses"] == 3
    assert f["response_ms_p50"] == 150.0 and f["response_ms_p99"] == 200.0
    assert f["response_less_chunk_rule_ms_p50"] == -10.0
    assert f["response_less_chunk_rule_ms_p99"] == 40.0
    assert f["agent_frame_ms_mean"] == 100.0  # 3,000 ms of agent audio in 30 frames
    assert f["greeting_ms_p50"] == 100.0 and f["greeting_ms_p99"] == 300.0
    assert f["replies_expected"] == 9
    assert f["replies_lost"] == 0 + 2 + 2
    assert f["calls_failed"] == 1 and f["failure_reasons"] == {"closed 1011": 1}
    assert f["agent_audio_expected_ms"] == 6000.0
    assert f["agent_audio_lost_ms"] == 3000.0
    assert not f["caller_overloaded"]


def test_exotel_chunk_rule_wait(peer: ModuleType) -> None:
    # 200 ms minimum frame: with 40 ms chunks paced in real time, the 5th completes it
    # 100 ms of audio (1,600 bytes at 8 kHz) complete with the chunk that reaches it
    assert peer.exotel_chunk_wait_ms(40) == 80.0
    assert peer.exotel_chunk_wait_ms(200) == 0.0
    assert peer.exotel_chunk_wait_ms(60) == 60.0


def test_machine_busy_leaves_out_idle_iowait_steal_and_guest(peer: ModuleType) -> None:
    from collections import namedtuple

    T = namedtuple("T", "user nice system idle iowait irq softirq steal guest guest_nice")
    t0 = T(10, 0, 5, 100, 1, 0, 0, 2, 0, 0)
    t1 = T(12, 0, 6, 101, 2, 0, 0, 3, 1, 0)  # 1 s of guest inside the 2 s of user
    assert peer.machine_busy(t0, t1, 1.0) == {"busy_s": 3.0, "steal_s": 1.0}


def test_degraded_names_each_reason_and_a_clean_level_holds(peer: ModuleType) -> None:
    base = {"response_ms_p99": 150.0}
    clean = {
        "calls": 10,
        "calls_failed": 0,
        "replies_lost": 0,
        "agent_audio_lost_ms": 0.0,
        "response_ms_p99": 399.0,  # <= 2 x 150 + 100
        "greeting_ms_p99": 1000.0,
        "caller_overloaded": False,
        "max_send_lag_ms": 3.0,
    }
    assert peer.degraded(clean, base) == []
    bad = {
        **clean,
        "calls_failed": 1,
        "replies_lost": 2,
        "agent_audio_lost_ms": 5000.0,
        "response_ms_p99": 401.0,
        "greeting_ms_p99": 2900.0,
        "caller_overloaded": True,
        "max_send_lag_ms": 80.0,
    }
    why = peer.degraded(bad, base)
    assert len(why) == 6
    assert any("failed" in w for w in why) and any("lagged 80 ms" in w for w in why)


def test_ratios_and_the_comparison_table(peer: ModuleType) -> None:
    assert peer.ratio(2.0, 8.0) == 0.25
    assert peer.ratio(1.0, 0) is None and peer.ratio(None, 3.0) is None
    figures = {key: 1.0 for _, key in peer.COMPARED}
    ours = {1: {**figures, "cpu_ms_per_call_second": 2.0}, 100: figures}
    theirs = {1: {**figures, "cpu_ms_per_call_second": 10.0}}
    rows = peer.comparison(ours, theirs)
    assert len(rows) == len(peer.COMPARED)  # only levels both sides ran
    cpu = next(r for r in rows if r["key"] == "cpu_ms_per_call_second")
    assert (cpu["ours"], cpu["peer"], cpu["ratio"]) == (2.0, 10.0, 0.2)
    table = peer.format_table(rows)
    assert table.splitlines()[0].startswith("| calls | figure | receptionist | Pipecat |")
    assert "| 1 | CPU ms per call-second | 2.00 | 10 | 0.20 |" in table
    ours[100]["degraded"] = []
    ours[100]["replies_lost"] = 0
    extra = peer.format_ours_only(ours, [1])
    assert extra.count("\n") == 2 and extra.splitlines()[-1].startswith("| 100 |")
