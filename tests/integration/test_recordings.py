"""Call recordings after the call: a finished tape (recordings/tape.py) adopted, encoded and stored
by the uploader in a local folder and in an S3-compatible bucket (moto's server on loopback);
a store that is down or full retried with backoff and then marked failed; retention; opt-out.
Runs on SQLite and PostgreSQL (the `db` fixture)."""

from __future__ import annotations

import errno
import os
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from receptionist.recordings.stores import LocalDirStore, RecordingStore, StoreError
from receptionist.recordings.tape import CallTape
from receptionist.recordings.uploader import RecordingUploader
from receptionist.store.db import Database
from receptionist.store.recordings import recording_for
from receptionist.store.schema import utcnow
from receptionist.tenants.repository import TenantRepository
from tests.integration.bridge_harness import tenants_dir
from tests.integration.s3_double import s3_double

RATE = 8000


def enable_recording(root: Path, tenant: str, extra: str = "") -> None:
    toml = root / tenant / "tenant.toml"
    toml.write_text(toml.read_text() + f"\n[recording]\nenabled = true\n{extra}")


def tone(ms: int) -> bytes:
    n = RATE * ms // 1000
    return (np.sin(np.arange(n) * 0.3) * 8000).astype("<i2").tobytes()


async def finished_tape(spool: Path, call_sid: str, *, opt_out: bool = False) -> None:
    """A two-second call on tape: the caller speaks first, the agent answers."""
    tape = CallTape(
        spool, call_sid=call_sid, tenant="bakery", session_id="sess-" + call_sid, rate=RATE,
        t0=0.0, max_s=60.0,
    )  # fmt: skip
    for i in range(1, 11):
        tape.caller_audio(tone(100), i * 0.1)
    tape.agent_audio(tone(1000), 1.0)
    if opt_out:
        tape.opt_out()
    await tape.close()


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


def uploader(
    db: Database, tmp_path: Path, store: RecordingStore, clock: Clock, **kw: object
) -> RecordingUploader:
    root = tenants_dir(tmp_path)
    enable_recording(root, "bakery", "retention_days = 7\n")
    return RecordingUploader(
        db, TenantRepository(root, check_interval=0), store, tmp_path / "raw",
        worker_id="w1", node="node-a", backoff_base_s=10.0, max_attempts=3, clock=clock,
        **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def check_stereo(data: bytes, path: Path) -> None:
    path.write_bytes(data)
    audio, rate = sf.read(path, dtype="float32")
    assert audio.shape[1] == 2 and rate == RATE
    left = float(np.sqrt(np.mean(audio[int(0.2 * rate) : int(0.8 * rate), 0] ** 2)))
    right_early = float(np.sqrt(np.mean(audio[int(0.2 * rate) : int(0.8 * rate), 1] ** 2)))
    right = float(np.sqrt(np.mean(audio[int(1.2 * rate) : int(1.8 * rate), 1] ** 2)))
    assert left > 10 * max(right_early, 1e-4) and right > 10 * max(right_early, 1e-4)


async def test_tape_to_local_store_then_retention(db: Database, tmp_path: Path) -> None:
    clock = Clock()
    store = LocalDirStore(tmp_path / "store")
    up = uploader(db, tmp_path, store, clock)
    await finished_tape(up.spool_dir, "CArec1")
    assert await up.run_once() == 2  # adopted, then uploaded
    row = await recording_for(db, "CArec1")
    assert row is not None and row["status"] == "stored", row
    assert row["store"] == "local" and row["content_type"] == "audio/ogg"
    assert row["duration_ms"] == 2000 and row["attempts"] == 1
    assert list(up.spool_dir.iterdir()) == []  # raw tracks and manifest gone
    size = store.size(row["store_key"])
    assert size == row["bytes"] > 0
    check_stereo(store.read(row["store_key"], 0, size - 1), tmp_path / "got.ogg")

    # a day before its retention (7 days for this tenant) it stays; after, it goes
    clock.now += timedelta(days=6)
    assert await up.sweep() == 0
    clock.now += timedelta(days=2)
    assert await up.sweep() == 1
    row = await recording_for(db, "CArec1")
    assert row is not None and row["status"] == "deleted" and row["deleted_at"] is not None
    with pytest.raises(StoreError) as gone:
        store.size(row["store_key"])
    assert gone.value.missing


async def test_s3_store_then_down_retried_then_failed(db: Database, tmp_path: Path) -> None:
    clock = Clock()
    with s3_double() as s3:
        store = s3.store("recordings")
        up = uploader(db, tmp_path, store, clock)
        await finished_tape(up.spool_dir, "CAs3ok")
        await up.run_once()
        row = await recording_for(db, "CAs3ok")
        assert row is not None and row["status"] == "stored" and row["store"] == "s3", row
        key = row["store_key"]
        assert key.startswith("bakery/") and key.endswith(".ogg")
        head = s3.client().head_object(Bucket="recordings", Key="calls/" + key)
        assert head["ContentType"] == "audio/ogg" and head["ContentLength"] == row["bytes"]
        check_stereo(store.read(key, 0, row["bytes"] - 1), tmp_path / "s3.ogg")
        assert store.read(key, 2, 5) == store.read(key, 0, 9)[2:6]  # ranges, for seeking

        s3.stop()  # the store goes down
        await finished_tape(up.spool_dir, "CAs3down")
        await up.run_once()
        row = await recording_for(db, "CAs3down")
        assert row is not None and row["status"] == "pending" and row["attempts"] == 1, row
        assert "s3 store" in row["last_error"] and "unreachable" in row["last_error"]
        due = row["next_attempt_at"]
        assert due == clock.now + timedelta(seconds=10)
        assert await up.run_once() == 0  # not due yet: nothing tried
        for attempt, wait in ((2, 10), (3, 20)):
            clock.now += timedelta(seconds=wait)
            await up.run_once()
            row = await recording_for(db, "CAs3down")
            assert row is not None and row["attempts"] == attempt, row
        assert row["status"] == "failed" and "unreachable" in row["last_error"]
        assert any(up.spool_dir.glob("*.pcm"))  # the raw tracks stay for the retention

        s3.start()  # back: a new call is stored again; the failed one stays failed (visible)
        await finished_tape(up.spool_dir, "CAs3back")
        clock.now += timedelta(hours=2)
        await up.run_once()
        row = await recording_for(db, "CAs3back")
        assert row is not None and row["status"] == "stored"
        failed = await recording_for(db, "CAs3down")
        assert failed is not None and failed["status"] == "failed"

        # the retention takes the failed one's raw tracks too, and the stored ones from S3
        clock.now += timedelta(days=8)
        assert await up.sweep() == 3
        assert not any(up.spool_dir.glob("*.pcm"))
        listed = s3.client().list_objects_v2(Bucket="recordings", Prefix="calls/bakery/")
        assert listed.get("KeyCount", 0) == 0


async def test_a_full_store_is_retried(db: Database, tmp_path: Path) -> None:
    """The local store's disk full: the kernel's own ENOSPC (the copy lands on /dev/full)."""
    clock = Clock()
    store = LocalDirStore(tmp_path / "store")
    up = uploader(db, tmp_path, store, clock)
    await finished_tape(up.spool_dir, "CAfull")
    await up.adopt()
    day = clock.now.strftime("%Y-%m-%d")
    part = tmp_path / "store" / "bakery" / day / "CAfull.ogg.part"
    part.parent.mkdir(parents=True)
    os.symlink("/dev/full", part)
    with pytest.raises(OSError) as full:
        Path("/dev/full").write_bytes(b"x")
    assert full.value.errno == errno.ENOSPC
    await up.run_once()
    row = await recording_for(db, "CAfull")
    assert row is not None and row["status"] == "pending" and row["attempts"] == 1, row
    assert "store full" in row["last_error"]
    assert not part.is_symlink()  # the store removed its partial file (here: the link)
    clock.now += timedelta(seconds=10)
    await up.run_once()
    row = await recording_for(db, "CAfull")
    assert row is not None and row["status"] == "stored" and row["attempts"] == 2


async def test_opted_out_tape_leaves_a_row_and_no_audio(db: Database, tmp_path: Path) -> None:
    clock = Clock()
    store = LocalDirStore(tmp_path / "store")
    up = uploader(db, tmp_path, store, clock)
    await finished_tape(up.spool_dir, "CAoptout", opt_out=True)
    await up.run_once()
    row = await recording_for(db, "CAoptout")
    assert row is not None and row["status"] == "opted_out" and row["raw_base"] is None
    assert list(up.spool_dir.iterdir()) == []
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").rglob("*.ogg"))


async def test_another_machines_tape_is_left_alone(db: Database, tmp_path: Path) -> None:
    clock = Clock()
    store = LocalDirStore(tmp_path / "store")
    up = uploader(db, tmp_path, store, clock)
    await finished_tape(up.spool_dir, "CAnode")
    await up.adopt()
    other = RecordingUploader(
        db, up.tenants, store, tmp_path / "other", worker_id="w2", node="node-b", clock=clock
    )
    assert await other.run_once() == 0
    row = await recording_for(db, "CAnode")
    assert row is not None and row["status"] == "pending" and row["attempts"] == 0
    # the same disk under a new machine name (a re-created container): its uploader takes it
    renamed = RecordingUploader(
        db, up.tenants, store, up.spool_dir, worker_id="w3", node="node-c", clock=clock
    )
    assert await renamed.rehome() == 1  # (in this test both "machines" see one disk)
    await renamed.run_once()
    row = await recording_for(db, "CAnode")
    assert row is not None and row["status"] == "stored" and row["node"] == "node-c"


async def test_a_corrupt_manifest_is_set_aside(db: Database, tmp_path: Path) -> None:
    clock = Clock()
    up = uploader(db, tmp_path, LocalDirStore(tmp_path / "store"), clock)
    up.spool_dir.mkdir(parents=True)
    (up.spool_dir / "bad.json").write_bytes(b"{not json")
    await finished_tape(up.spool_dir, "CAafter")
    await up.run_once()
    assert (up.spool_dir / "bad.bad").exists()
    row = await recording_for(db, "CAafter")
    assert row is not None and row["status"] == "stored"


async def test_the_orphan_sweep_keeps_the_tracks_of_an_upload_still_coming(
    db: Database, tmp_path: Path
) -> None:
    """Raw tracks a day old without a manifest: a `pending` row's (first try or retrying after
    a failure) stay; a finally failed row's and those of no row at all go."""
    clock = Clock()
    blocked = tmp_path / "store"
    blocked.write_text("a file where the store's folder should be: every put fails")
    up = uploader(db, tmp_path, LocalDirStore(blocked), clock)
    await finished_tape(up.spool_dir, "CAgaveup")
    for _ in range(3):  # max_attempts = 3: then failed for good
        await up.run_once()
        clock.now += timedelta(hours=2)
    given_up = await recording_for(db, "CAgaveup")
    assert given_up is not None and given_up["status"] == "failed", given_up
    await finished_tape(up.spool_dir, "CAretrying")
    await up.run_once()  # adopted, first try failed: pending, retried later
    retrying = await recording_for(db, "CAretrying")
    assert retrying is not None and retrying["status"] == "pending", retrying
    assert retrying["attempts"] == 1
    # a killed server's tracks: no manifest, no row
    (up.spool_dir / "CAkilled.caller.pcm").write_bytes(tone(100))
    (up.spool_dir / "CAkilled.agent.pcm").write_bytes(tone(100))
    day_old = time.time() - 2 * 24 * 3600
    for path in up.spool_dir.glob("*.pcm"):
        os.utime(path, (day_old, day_old))

    await up.sweep()

    left = sorted(p.name for p in up.spool_dir.glob("*.pcm"))
    assert left and all(name.startswith(Path(retrying["raw_base"]).name) for name in left), left
    assert len(left) == 2  # the retrying upload's two tracks, nothing else
    clock.now += timedelta(hours=2)
    await up.run_once()  # its retry still has its audio (and fails here: the store is blocked)
    again = await recording_for(db, "CAretrying")
    assert again is not None and again["attempts"] == 2, again
    assert "Not a directory" in (again["last_error"] or ""), again  # not "the raw audio is gone"
