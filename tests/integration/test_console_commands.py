"""The installed `receptionist` command, run as a user types it: separate processes, no keys.

A fresh machine has no Gemini key: `serve` must answer calls with the local engine, `call`
must reach it, and the stored call must show up in `calls list` / `calls show`, be carried
through the pipeline by `worker --once`, with `tenants validate` and `db upgrade` working too.
Everything here goes through real processes and a real socket; nothing is built in-process.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from receptionist.engines.local.models import LocalModelsMissing, check_local_models
from tests.integration.bridge_harness import REPO

RECEPTIONIST = Path(sys.executable).parent / "receptionist"  # the installed console script

try:
    check_local_models()
    HAVE_LOCAL = True
except LocalModelsMissing:  # pragma: no cover - CI installs the extra
    HAVE_LOCAL = False


def keyless_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GEMINI_", "GOOGLE_", "MSG91_", "VOICE_ENGINE", "LOCAL_", "LLM_"))
    }
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'data' / 'receptionist.db'}",
        SPOOL_DIR=str(tmp_path / "data" / "spool"),
        TENANTS_DIR=str(REPO / "tenants"),
        NO_COLOR="1",
        COLUMNS="200",
    )
    env.update(extra)
    return env


def run(
    args: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RECEPTIONIST), *args],
        env=env,
        cwd=env.get("CWD", REPO),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[int, dict[str, str], Path]]:
    """`receptionist serve` with no keys, in-process worker off (the test runs `worker`)."""
    port = free_port()
    env = keyless_env(tmp_path, PORT=str(port), RUN_WORKER="false")
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(RECEPTIONIST), "serve"], env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        # ready means the database answers and the models are loaded: poll the condition
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, f"serve exited {proc.returncode}: {log.read_text()}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"serve never got ready: {log.read_text()}"
            time.sleep(0.2)
        yield port, env, log
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover - reported below
            proc.kill()
            code = proc.wait()
    # uvicorn shuts down gracefully, then re-raises the signal it caught: dying of SIGTERM
    # after "Finished server process" is the clean end a supervisor expects
    assert code in (0, -signal.SIGTERM), f"serve ended with {code}: {log.read_text()}"
    assert "Finished server process" in log.read_text()


@pytest.mark.skipif(not HAVE_LOCAL, reason="the `local` extra is not installed")
def test_keyless_serve_call_list_show_worker(
    served: tuple[int, dict[str, str], Path], tmp_path: Path
) -> None:
    _, env, log = served
    assert "calls will be answered by local, brain grounded (no Gemini key is set)" in (
        log.read_text()
    )

    called = run(
        ["call", "bakery", "--say", "What time do you close today?"],  # paced, as a phone
        env,
        timeout=300,
    )
    assert called.returncode == 0, called.stdout + called.stderr

    listed = run(["calls", "list"], env)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines() if " bakery " in line]
    assert len(rows) == 1, listed.stdout
    call_sid = rows[0][2]

    shown = run(["calls", "show", call_sid], env)
    assert shown.returncode == 0, shown.stderr
    row = json.loads(shown.stdout)
    assert row["tenant"] == "bakery" and row["status"] == "completed"
    assert row["stage"] == "transcript_saved"  # serve's own worker is off
    speakers = [turn["speaker"] for turn in row["transcript"]]
    assert "caller" in speakers and "agent" in speakers, row["transcript"]
    heard = " ".join(t["text"] for t in row["transcript"] if t["speaker"] == "caller").lower()
    assert "close" in heard, heard

    worked = run(["worker", "--once"], env)
    assert worked.returncode == 0, worked.stderr
    row = json.loads(run(["calls", "show", call_sid], env).stdout)
    assert row["stage"] == "done", row["stage"]
    assert row["call_type"], row


def test_db_upgrade_and_tenants_validate(tmp_path: Path) -> None:
    env = keyless_env(tmp_path)
    first = run(["db", "upgrade"], env)
    again = run(["db", "upgrade"], env)  # idempotent
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    assert "is up to date" in again.stdout
    assert (tmp_path / "data" / "receptionist.db").is_file()

    validated = run(["tenants", "validate"], env)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert {"bakery", "saloon", "clinic"} <= {
        line.split()[-1] for line in validated.stdout.splitlines()
    }

    one = run(["tenants", "validate", "nope"], env)
    assert one.returncode == 1 and "nope" in one.stdout


def test_serve_with_a_really_wrong_setting_fails_fast_with_one_line(tmp_path: Path) -> None:
    for setting, named in (
        ({"VOICE_ENGINE": "gemini-live"}, "GEMINI_API_KEY"),
        ({"PORT": "eighty"}, "PORT"),
    ):
        result = run(["serve"], keyless_env(tmp_path, **setting), timeout=60)
        assert result.returncode == 2, result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and named in lines[0], result.stderr


def test_run_script_passes_every_command_through(tmp_path: Path) -> None:
    """`./run <command>` is what the README offers beside `receptionist <command>`."""
    env = keyless_env(tmp_path)
    for args in (["tenants", "list"], ["messages", "list"], ["costs"], ["worker", "--once"]):
        result = subprocess.run(
            [str(REPO / "run"), *args],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, (args, result.stdout, result.stderr)


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    env = keyless_env(tmp_path)
    made = run(["keys", "create", "--tenant", "bakery", "--name", "owner phone"], env)
    assert made.returncode == 0, made.stderr
    key = made.stdout.splitlines()[-1]
    assert key.startswith("rk_") and " " not in key  # alone on the last line
    admin = run(["keys", "create", "--admin"], env)
    assert admin.returncode == 0 and admin.stdout.splitlines()[-1].startswith("rk_")
    for bad in (["keys", "create"], ["keys", "create", "--admin", "--tenant", "bakery"]):
        assert run(bad, env).returncode == 2
    unknown = run(["keys", "create", "--tenant", "nope"], env)
    assert unknown.returncode == 2 and "nope" in unknown.stderr

    listed = run(["keys", "list"], env)
    assert listed.returncode == 0
    assert key not in listed.stdout and key[:11] in listed.stdout  # the prefix, never the key
    assert "tenant bakery" in listed.stdout and "admin (every tenant)" in listed.stdout
    key_id = listed.stdout.split()[0]
    assert run(["keys", "revoke", key_id], env).returncode == 0
    assert run(["keys", "revoke", key_id], env).returncode == 1  # revoked already
    assert "revoked" in run(["keys", "list"], env).stdout.splitlines()[0]
