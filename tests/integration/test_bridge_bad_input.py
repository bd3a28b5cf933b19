"""Bad input never crashes the server or other calls, and the call row records what happened."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from receptionist.sim.caller import CallerScript, CallOptions, place_call
from receptionist.sim.gemini_live import CallScript, Failure, FakeGeminiLive, Hold, ScriptedTurn
from receptionist.store.calls import get_call, list_calls
from receptionist.store.db import Database
from receptionist.telephony import exotel
from tests.integration.bridge_harness import (
    Bridge,
    RawCall,
    bakery_auth_only,
    row_for,
    running_bridge,
    sid,
)
from tests.prom import Changes

TURNS = [ScriptedTurn(heard="Are you open today?", reply="Yes, till nine.")]


async def test_malformed_frames_are_counted_and_the_call_goes_on(
    db: Database, tmp_path: Path
) -> None:
    async with (
        FakeGeminiLive(script=CallScript(turns=TURNS)) as fake,
        running_bridge(db, tmp_path, fake, max_frame_bytes=4096) as bridge,
        connect(bridge.url("bakery"), max_size=2**22) as ws,
    ):
        call = RawCall(ws, sid())
        await ws.send(
            exotel.caller_media_frame("MZx", b"\0" * 320, sequence=0, chunk=0, timestamp_ms=0)
        )
        await call.start()
        await call.wait_for("media")  # greeting audio
        bad = [
            "this is not json",
            b"\x00\x01binary",
            '{"event":"transfer","stream_sid":"x"}',
            '{"event":"media","media":{"payload":"@@not-base64@@"}}',
            '{"event":"media","media":{"payload":"' + base64.b64encode(b"abc").decode() + '"}}',
            '{"event":"media","media":{"payload":"' + "A" * 8000 + '"}}',
            "[1, 2, 3]",
            '{"event":"dtmf","dtmf":"5"}',
        ]
        for frame in bad:
            await ws.send(frame)
        await call.speak("Are you open today?")
        await call.wait_for("mark", count=2)  # greeting + the answer, so the call went on
        await call.hang_up()
    row = await row_for(db, call.call_sid)
    assert row["status"] == "completed"
    counts = row["stats"]["bad_frames"]
    assert counts == {
        "media_before_start": 1,
        "not_json": 1,
        "binary_frame": 1,
        "unknown_event": 1,
        "bad_base64": 1,
        "odd_length_pcm": 1,
        "oversized_frame": 1,
        "not_object": 1,
        "missing_field": 1,
    }
    kinds = {e["kind"] for e in row["events"]}
    assert {f"bad_frame:{k}" for k in counts} <= kinds
    assert [t["text"] for t in row["transcript"] if t["speaker"] == "caller"] == [TURNS[0].heard]
    assert fake.sessions[0].caller_turns, "the model still heard the caller"


async def test_flood_of_bad_frames_stays_bounded(sqlite_db: Database, tmp_path: Path) -> None:
    async with (
        FakeGeminiLive() as fake,
        running_bridge(sqlite_db, tmp_path, fake) as bridge,
        connect(bridge.url("bakery")) as ws,
    ):
        call = RawCall(ws, sid())
        await call.start()
        for _ in range(2000):
            await ws.send("garbage")
        await call.hang_up()
    row = await row_for(sqlite_db, call.call_sid)
    assert row["stats"]["bad_frames"] == {"not_json": 2000}
    assert len(row["events"]) <= 200


@pytest.mark.parametrize(
    ("tenant", "reason"), [("nosuchshop", "unknown"), ("inactive", "inactive"), ("../etc", "")]
)
async def test_unknown_or_inactive_tenant_is_refused_with_reason(
    db: Database, tmp_path: Path, tenant: str, reason: str
) -> None:
    async with (
        FakeGeminiLive() as fake,
        running_bridge(db, tmp_path, fake) as bridge,
    ):
        result = await place_call(
            CallOptions(url=bridge.url(tenant), realtime=False), CallerScript(utterances=["Hi"])
        )
        # The server is still fine for everyone else.
        ok = await place_call(
            CallOptions(url=bridge.url("saloon"), realtime=False), CallerScript(utterances=[])
        )
    assert not result.ok
    assert ok.ok, ok.error
    # The refused call never reached the model; the saloon's call did, once.
    assert ["Glow" in (s.system_instruction or "") for s in fake.sessions] == [True]
    if tenant == "../etc":  # not even routed to the Exotel endpoint
        assert result.error is not None and result.error.startswith("connect:")
        return
    assert result.close_code == 1008
    assert reason in result.close_reason.lower()
    if tenant == "inactive":  # a known tenant: its owner sees the call it missed
        row = await row_for(db, result.call_sid)
        assert row["status"] == "rejected"
        assert row["end_reason"] == "tenant_unavailable"
    else:  # no tenant to own a row: nothing is written (the bridge has stopped: nothing will be)
        assert await get_call(db, result.call_sid) is None


async def test_no_tenant_anywhere_is_refused(sqlite_db: Database, tmp_path: Path) -> None:
    async with FakeGeminiLive() as fake, running_bridge(sqlite_db, tmp_path, fake) as bridge:
        result = await place_call(CallOptions(url=bridge.url(None), realtime=False), None)
    assert result.close_code == 1008
    assert not fake.sessions
    # no tenant to own a row: nothing is written (the bridge has stopped: nothing will be)
    assert await get_call(sqlite_db, result.call_sid) is None


@pytest.mark.parametrize(
    ("failure", "api_key"),
    [(Failure(reject_key=True), "test-key"), (Failure(fail_setup=True), "test-key")],
    ids=["key_rejected", "setup_fails"],
)
async def test_gemini_refusing_ends_call_cleanly_and_marks_failed(
    db: Database, tmp_path: Path, failure: Failure, api_key: str
) -> None:
    async with (
        FakeGeminiLive(failure=failure) as fake,
        running_bridge(db, tmp_path, fake) as bridge,
    ):
        result = await place_call(
            CallOptions(url=bridge.url("bakery"), realtime=False), CallerScript(utterances=["Hi"])
        )
    assert result.close_code == 1000  # a clean end: Exotel moves on to the next applet
    row = await row_for(db, result.call_sid)
    assert row["status"] == "failed"
    assert row["end_reason"] == "engine_unavailable"
    assert "Gemini Live connect failed" in row["error"]


async def test_gemini_unreachable(sqlite_db: Database, tmp_path: Path) -> None:
    fake = FakeGeminiLive()
    await fake.start()
    port_url = fake.base_url
    await fake.stop()  # nothing listens there any more
    async with running_bridge(sqlite_db, tmp_path, fake, gemini_base_url=port_url) as bridge:
        result = await place_call(CallOptions(url=bridge.url("bakery"), realtime=False), None)
    row = await row_for(sqlite_db, result.call_sid)
    assert row["status"] == "failed"
    assert "connect failed" in row["error"]


async def test_engine_dropping_mid_call_saves_transcript(db: Database, tmp_path: Path) -> None:
    turns = [*TURNS, ScriptedTurn(heard="And tomorrow?", reply="Also till nine.")]
    async with (
        # the session drops and no new one can be opened (a drop that can be resumed is
        # survived: tests/integration/test_resumption.py)
        FakeGeminiLive(
            script=CallScript(turns=turns),
            failure=Failure(close_after_turns=2, fail_sessions_from=1),
        ) as fake,
        running_bridge(db, tmp_path, fake) as bridge,
    ):
        result = await place_call(
            CallOptions(url=bridge.url("bakery"), realtime=False),
            CallerScript(utterances=["Are you open today?", "And tomorrow?"]),
        )
    assert result.closed_by == "server"
    row = await row_for(db, result.call_sid)
    assert row["status"] == "failed"
    assert row["end_reason"] == "engine_error"
    texts = [t["text"] for t in row["transcript"]]
    assert TURNS[0].heard in texts and TURNS[0].reply in texts


async def test_caller_disconnecting_mid_sentence_keeps_transcript(
    db: Database, tmp_path: Path
) -> None:
    long_reply = "Our menu has vanilla, pineapple, butterscotch and black forest cakes."
    # The model says the first second of its reply and then holds the rest: the caller hangs
    # up in the middle of the sentence, whenever that happens to be on this machine.
    hold = Hold(after_ms=1000)
    script = CallScript(
        turns=[ScriptedTurn(heard="What is on the menu?", reply=long_reply, hold=hold)]
    )
    async with (
        FakeGeminiLive(script=script) as fake,
        running_bridge(db, tmp_path, fake) as bridge,
        connect(bridge.url("bakery")) as ws,
    ):
        call = RawCall(ws, sid())
        await call.start()
        await call.wait_for("mark")  # greeting done
        greeting_frames = len(call.received)
        await call.speak("What is on the menu?")
        await hold.wait_reached(within_s=15)
        # Some of the reply has reached the caller, and its end has not (no mark).
        await call.wait_for("media", count=call.events()[:greeting_frames].count("media") + 1)
        assert call.events()[greeting_frames:].count("mark") == 0
        ws.transport.abort()  # no stop frame, no close handshake: the line just drops
    row = await row_for(db, call.call_sid)
    assert row["end_reason"] == "caller_disconnected"
    caller = [t for t in row["transcript"] if t["speaker"] == "caller"]
    assert [t["text"] for t in caller] == ["What is on the menu?"]
    agent_last = row["transcript"][-1]
    assert agent_last["speaker"] == "agent" and agent_last.get("incomplete")
    assert agent_last["text"] and long_reply.startswith(agent_last["text"])
    assert len(agent_last["text"]) < len(long_reply)  # what was said, not the whole reply
    assert not fake.sessions[0].replies[-1].completed


async def _auth_bridge_call(bridge: Bridge, auth: tuple[str, str] | None) -> Any:
    return await place_call(
        CallOptions(url=bridge.url("bakery"), realtime=False, auth=auth),
        CallerScript(utterances=[]),
    )


async def test_basic_auth_global(sqlite_db: Database, tmp_path: Path) -> None:
    from pydantic import SecretStr

    async with (
        FakeGeminiLive() as fake,
        running_bridge(
            sqlite_db,
            tmp_path,
            fake,
            exotel_ws_user="exo-key",
            exotel_ws_password=SecretStr("exo-token"),
        ) as bridge,
    ):
        missing = await _auth_bridge_call(bridge, None)
        wrong = await _auth_bridge_call(bridge, ("exo-key", "nope"))
        right = await _auth_bridge_call(bridge, ("exo-key", "exo-token"))
        with pytest.raises(InvalidStatus):
            async with connect(
                bridge.url("bakery"), additional_headers={"Authorization": "Basic !!!"}
            ):
                pass
    assert "403" in (missing.error or "") and "403" in (wrong.error or "")
    assert len(fake.sessions) == 1  # only the authorised call reached the model
    assert right.ok, right.error
    calls = await list_calls(sqlite_db)
    assert [c["call_sid"] for c in calls] == [right.call_sid]


async def test_basic_auth_per_tenant(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeGeminiLive() as fake, running_bridge(sqlite_db, tmp_path, fake) as bridge:
        bakery_auth_only(bridge, monkeypatch)
        wrong = await _auth_bridge_call(bridge, ("exo-key", "exo-token"))
        right = await _auth_bridge_call(bridge, ("bk", "bt"))
        other_tenant = await place_call(
            CallOptions(url=bridge.url("saloon"), realtime=False), CallerScript(utterances=[])
        )
    assert "403" in (wrong.error or "")
    assert right.ok, right.error
    assert other_tenant.ok, other_tenant.error


async def test_database_outage_spools_and_replays(tmp_path: Path, sqlite_db: Database) -> None:
    broken = Database("postgresql://nobody@127.0.0.1:9/nowhere")  # nothing listens on port 9
    changes = Changes()
    async with FakeGeminiLive(script=CallScript(turns=TURNS)) as fake:
        async with running_bridge(broken, tmp_path, fake) as bridge:
            result = await place_call(
                CallOptions(url=bridge.url("bakery"), realtime=False),
                CallerScript(utterances=["Are you open today?"]),
            )
            assert result.ok, result.error  # the caller noticed nothing
            assert changes("receptionist_persist_failures_total") >= 1
            spool = bridge.ctx.settings.spool_dir
        files = list(spool.glob("*.json"))
        assert len(files) == 1
        from receptionist.bridge.recorder import CallRecorder

        assert await CallRecorder(sqlite_db, spool).replay_spool() == 1
    assert not list(spool.glob("*.json"))
    row = await get_call(sqlite_db, result.call_sid)
    assert row is not None and row["status"] == "completed"
    assert TURNS[0].reply in [t["text"] for t in row["transcript"]]
    assert row["usage"]
    await broken.dispose()
