"""Recorded calls end to end: a simulated caller through the real bridge (Gemini Live double) for
a tenant that records, then the uploader the worker runs, then the API. The stereo file has the
caller on the left and the agent on the right, lined up with the transcript's times; a caller who
presses the opt-out key leaves nothing; a store that is down leaves the call and its transcript
as they are and the recording retried, then failed. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import soundfile as sf
import sqlalchemy as sa

from receptionist.recordings.uploader import RecordingUploader, this_node
from receptionist.sim.caller import CallerScript, CallOptions, place_call
from receptionist.sim.gemini_live import CallScript, FakeGeminiLive, ScriptedTurn
from receptionist.store.api_keys import create_key
from receptionist.store.calls import NewCall, create_call, get_call
from receptionist.store.db import Database
from receptionist.store.recordings import recording_for
from receptionist.store.schema import call_recordings, utcnow
from receptionist.web.recordings import MAX_RANGE
from tests.integration.bridge_harness import Bridge, row_for, running_bridge
from tests.integration.s3_double import s3_double
from tests.integration.test_recordings import enable_recording

TURNS = [ScriptedTurn(heard="Do you have eggless cakes?", reply="Yes, all our cakes are eggless.")]
ANNOUNCE = "This call is recorded. Press 9 if you would rather it was not."
FRAME_S = 0.1


def recording_settings(tmp_path: Path, **more: Any) -> dict[str, Any]:
    return {
        "recordings_spool_dir": tmp_path / "raw",
        "recordings_dir": tmp_path / "store",
        **more,
    }


def records(bridge: Bridge, extra: str) -> None:
    enable_recording(bridge.ctx.settings.tenants_dir, "bakery", extra)
    bridge.ctx.tenants.invalidate("bakery")


def uploader(bridge: Bridge, **kw: Any) -> RecordingUploader:
    """What the worker of `serve` runs on this machine."""
    s = bridge.ctx.settings
    assert bridge.ctx.recording_store is not None
    return RecordingUploader(
        bridge.db, bridge.ctx.tenants, bridge.ctx.recording_store, s.recordings_spool_dir,
        worker_id="test", node=this_node(), **kw,
    )  # fmt: skip


def levels(audio: np.ndarray, rate: int, channel: int) -> np.ndarray:
    """RMS per 100 ms frame."""
    step = int(rate * FRAME_S)
    n = len(audio) // step
    x = audio[: n * step, channel].reshape(n, step)
    return np.asarray(np.sqrt(np.mean(x**2, axis=1)))


def spans(loud: np.ndarray) -> list[tuple[float, float]]:
    """(start s, end s) of each run of loud frames, runs under 300 ms apart joined."""
    out: list[tuple[float, float]] = []
    for i in np.flatnonzero(loud):
        t = i * FRAME_S
        if out and t - out[-1][1] <= 0.3:
            out[-1] = (out[-1][0], t + FRAME_S)
        else:
            out.append((t, t + FRAME_S))
    return out


async def test_recorded_call_is_stereo_and_lines_up_with_the_transcript(
    db: Database, tmp_path: Path
) -> None:
    script = CallScript(turns=TURNS)
    async with (
        FakeGeminiLive(script=script) as fake,
        running_bridge(db, tmp_path, fake, **recording_settings(tmp_path)) as bridge,
    ):
        records(bridge, f'opt_out_digit = "9"\nannounce = "{ANNOUNCE}"\n')
        result = await place_call(
            CallOptions(url=bridge.url("bakery"), realtime=True),
            CallerScript(utterances=[t.heard for t in TURNS], hangup_after_ms=500),
        )
        assert result.ok, result.error
        await row_for(db, result.call_sid)  # the call's end is written (its tape is closed)
        up = uploader(bridge)
        assert await up.run_once() == 2
        row = await recording_for(db, result.call_sid)
        assert row is not None and row["status"] == "stored", row
        call = await get_call(db, result.call_sid)
        assert call is not None
        # the announcement is said at the end of the greeting
        greeting = fake.sessions[0].replies[0]
        assert greeting.kind == "greeting" and greeting.text.endswith("? " + ANNOUNCE)

        store = bridge.ctx.recording_store
        assert store is not None
        data = store.read(row["store_key"], 0, row["bytes"] - 1)
        (tmp_path / "call.ogg").write_bytes(data)
        audio, rate = sf.read(tmp_path / "call.ogg", dtype="float32")
        assert audio.shape[1] == 2 and rate == 8000

        # the API: the call's JSON names the recording; its URL serves it (and byte ranges)
        key = (await create_key(db, tenant="bakery"))[1]
        other = (await create_key(db, tenant="saloon"))[1]
        base = f"http://127.0.0.1:{bridge.port}"
        async with httpx.AsyncClient(base_url=base) as c:
            got = await c.get(
                f"/api/v1/calls/{result.call_sid}", headers={"Authorization": f"Bearer {key}"}
            )
            assert got.status_code == 200
            rec = got.json()["recording"]
            assert rec["status"] == "stored" and rec["duration_ms"] == row["duration_ms"]
            full = await c.get(rec["url"], headers={"Authorization": f"Bearer {key}"})
            assert full.status_code == 200 and full.content == data
            assert full.headers["content-type"] == "audio/ogg"
            part = await c.get(
                rec["url"], headers={"Authorization": f"Bearer {key}", "Range": "bytes=10-19"}
            )
            assert part.status_code == 206 and part.content == data[10:20]
            assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
            bad = await c.get(
                rec["url"], headers={"Authorization": f"Bearer {key}", "Range": "bytes=999999-"}
            )
            assert bad.status_code == 416
            # another tenant's key: as if there were no such call
            theirs = await c.get(rec["url"], headers={"Authorization": f"Bearer {other}"})
            assert theirs.status_code == 404
            assert (await c.get(rec["url"])).status_code == 401

    left, right = levels(audio, rate, 0), levels(audio, rate, 1)
    floor = 0.01
    agent_spans = spans((right > floor) & (left < floor))
    caller_spans = spans((left > floor) & (right < floor))
    assert not np.any((left > floor) & (right > floor)), "nobody spoke over anybody here"
    transcript = call["transcript"]
    assert [t["speaker"] for t in transcript] == ["agent", "caller", "agent"]
    greeting_turn, caller_turn, reply_turn = transcript
    # the agent's audio on the right (the greeting, then the reply), the caller's on the left
    # in between; each lined up with the transcript's clock: an agent turn starts with its
    # first audio, a caller's line where their voice began (a little before, never after)
    assert len(agent_spans) == 2 and len(caller_spans) == 1, (agent_spans, caller_spans)
    assert agent_spans[0][1] <= caller_spans[0][0] < caller_spans[0][1] <= agent_spans[1][0]
    assert abs(agent_spans[0][0] - greeting_turn["start_ms"] / 1000) <= 0.25
    assert abs(agent_spans[1][0] - reply_turn["start_ms"] / 1000) <= 0.25
    assert caller_spans[0][0] - 0.6 <= caller_turn["start_ms"] / 1000 <= caller_spans[0][0] + 0.1
    assert agent_spans[0][1] - agent_spans[0][0] >= 5.0  # greeting and announcement, whole
    assert abs(len(audio) / rate - row["duration_ms"] / 1000) < 0.1


async def test_caller_who_presses_the_opt_out_key_is_not_recorded(
    db: Database, tmp_path: Path
) -> None:
    async with (
        FakeGeminiLive(script=CallScript(turns=TURNS)) as fake,
        running_bridge(db, tmp_path, fake, **recording_settings(tmp_path)) as bridge,
    ):
        records(bridge, 'opt_out_digit = "9"\n')
        result = await place_call(
            CallOptions(url=bridge.url("bakery"), realtime=False),
            CallerScript(utterances=[t.heard for t in TURNS], dtmf={0: "19"}),
        )
        assert result.ok, result.error
        call = await row_for(db, result.call_sid)
        assert call["status"] == "completed"
        up = uploader(bridge)
        await up.run_once()
        row = await recording_for(db, result.call_sid)
        assert row is not None and row["status"] == "opted_out", row
        assert row["store_key"] is None and row["raw_base"] is None
    kinds = [(e["kind"], e["detail"]) for e in call["events"]]
    assert ("recording_opt_out", "the caller pressed 9") in kinds
    assert [t["text"] for t in call["transcript"] if t["speaker"] == "caller"] == [TURNS[0].heard]
    assert list((tmp_path / "raw").iterdir()) == []  # nothing kept on the serving machine
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").rglob("*.*"))


async def test_store_down_leaves_the_call_alone_then_the_recording_fails(
    db: Database, tmp_path: Path
) -> None:
    with s3_double() as s3:
        s3.store("calls")  # the bucket exists; then the store goes down
        s3.stop()
        settings = recording_settings(
            tmp_path,
            recording_store="s3",
            recording_s3_bucket="calls",
            recording_s3_endpoint_url=s3.endpoint,
            recording_s3_region="us-east-1",
            recording_s3_access_key_id="test",
            recording_s3_secret_access_key="test",
        )
        async with (
            FakeGeminiLive(script=CallScript(turns=TURNS)) as fake,
            running_bridge(db, tmp_path, fake, **settings) as bridge,
        ):
            records(bridge, "")
            result = await place_call(
                CallOptions(url=bridge.url("bakery"), realtime=False),
                CallerScript(utterances=[t.heard for t in TURNS]),
            )
            assert result.ok, result.error
            await row_for(db, result.call_sid)
            up = uploader(bridge, max_attempts=2, backoff_base_s=0.001)
            await up.run_once()
            row = await recording_for(db, result.call_sid)
            assert row is not None and row["status"] == "pending" and row["attempts"] == 1
            await up.run_once()  # due again at once (a millisecond's backoff)
            row = await recording_for(db, result.call_sid)
            assert row is not None and row["status"] == "failed" and row["attempts"] == 2, row
            assert "unreachable" in row["last_error"]
            key = (await create_key(db, tenant="bakery"))[1]
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{bridge.port}") as c:
                got = await c.get(
                    f"/api/v1/calls/{result.call_sid}",
                    headers={"Authorization": f"Bearer {key}"},
                )
        body = got.json()
        assert body["recording"]["status"] == "failed" and body["recording"]["url"] is None
        assert "unreachable" in body["recording"]["error"]
        # the call and its transcript are as any other call's
        assert body["status"] == "completed" and body["stage"] == "transcript_saved"
        assert [t["text"] for t in body["transcript"]][-2:] == [TURNS[0].heard, TURNS[0].reply]


async def test_a_tenant_that_does_not_record_leaves_nothing(db: Database, tmp_path: Path) -> None:
    async with (
        FakeGeminiLive(script=CallScript(turns=TURNS)) as fake,
        running_bridge(db, tmp_path, fake, **recording_settings(tmp_path)) as bridge,
    ):
        result = await place_call(
            CallOptions(url=bridge.url("bakery"), realtime=False),
            CallerScript(utterances=[t.heard for t in TURNS]),
        )
        assert result.ok, result.error
        await row_for(db, result.call_sid)
        assert await uploader(bridge).run_once() == 0
        assert await recording_for(db, result.call_sid) is None
    assert not (tmp_path / "raw").exists() or list((tmp_path / "raw").iterdir()) == []


async def test_the_recording_route_answers_ranges_as_http_says(
    db: Database, tmp_path: Path
) -> None:
    """Over real HTTP, a recording larger than one answer's cap: no Range is 200 and the whole
    file (never a 206 nobody asked for); a valid Range is 206 with its Content-Range; a Range
    past the end is 416 with `Content-Range: bytes */size`; a unit we do not serve, the whole."""
    async with (
        FakeGeminiLive() as fake,
        running_bridge(db, tmp_path, fake, **recording_settings(tmp_path)) as bridge,
    ):
        sid = "CAbigrecording1"
        await create_call(db, NewCall(call_sid=sid, tenant="bakery", from_number="+919800000001"))
        data = os.urandom(MAX_RANGE + 54321)
        store = bridge.ctx.recording_store
        assert store is not None
        key = f"bakery/2026-12-07/{sid}.ogg"
        (tmp_path / "big.ogg").write_bytes(data)
        store.put(key, tmp_path / "big.ogg", "audio/ogg")
        async with db.begin() as conn:
            await conn.execute(
                sa.insert(call_recordings).values(
                    call_sid=sid, tenant="bakery", node=this_node(), sample_rate=8000,
                    status="stored", store=store.name, store_key=key, content_type="audio/ogg",
                    bytes=len(data), duration_ms=1000, created_at=utcnow(),
                )
            )  # fmt: skip
        api_key = (await create_key(db, tenant="bakery"))[1]
        size = len(data)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{bridge.port}") as c:

            async def get(range_header: str | None = None) -> httpx.Response:
                headers = {"Authorization": f"Bearer {api_key}"}
                if range_header is not None:
                    headers["Range"] = range_header
                return await c.get(f"/api/v1/calls/{sid}/recording", headers=headers)

            whole = await get()
            assert whole.status_code == 200 and whole.content == data
            assert "content-range" not in whole.headers
            assert whole.headers["content-length"] == str(size)
            assert whole.headers["accept-ranges"] == "bytes"
            part = await get("bytes=10-19")
            assert part.status_code == 206 and part.content == data[10:20]
            assert part.headers["content-range"] == f"bytes 10-19/{size}"
            tail = await get("bytes=-5")
            assert tail.status_code == 206 and tail.content == data[-5:]
            assert tail.headers["content-range"] == f"bytes {size - 5}-{size - 1}/{size}"
            start = await get("bytes=0-")  # open-ended: the first answer's worth, said so
            assert start.status_code == 206 and start.content == data[:MAX_RANGE]
            assert start.headers["content-range"] == f"bytes 0-{MAX_RANGE - 1}/{size}"
            past = await get(f"bytes={size}-")
            assert past.status_code == 416
            assert past.headers["content-range"] == f"bytes */{size}"
            other_unit = await get("items=0-5")
            assert other_unit.status_code == 200 and other_unit.content == data
