"""`receptionist demo` as a person runs it: the installed command in its own process.

From a script (standard input not a terminal) or with --exit it places its call, prints the
dashboard's address and a key, and exits as before. From a terminal (here a pseudo-terminal as
standard input) it keeps the same server up: the printed address answers, the printed key
reads the demo tenant through the API, and Ctrl-C (SIGINT) ends it with exit 0 and no
traceback. The call uses the Gemini Live double (no models to load); --fast sends the caller's
audio unpaced, but the simulated caller still hears each reply in real time, so one demo takes
about 40 s here.
"""

from __future__ import annotations

import os
import pty
import queue
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.bridge_harness import REPO
from tests.integration.test_console_commands import RECEPTIONIST, free_port, keyless_env, run

DEMO = ["demo", "--fast", "--engine", "live-double"]
DEMO_TIMEOUT_S = 240  # a whole demo call; it takes ~40 s on this 2-core machine
ADDRESS = re.compile(r"^Dashboard http://127\.0\.0\.1:(\d+)/app\b", re.MULTILINE)
KEY = re.compile(r"^(rk_[0-9a-f]{8}_[A-Za-z0-9_-]{43})$", re.MULTILINE)


def printed(stdout: str) -> tuple[int, str]:
    """The dashboard's port and the sign-in key the demo printed (the key alone on a line)."""
    address, key = ADDRESS.search(stdout), KEY.search(stdout)
    assert address and key, stdout
    return int(address.group(1)), key.group(1)


def assert_key_stored(env: dict[str, str], key: str) -> None:
    listed = run(["keys", "list"], env)
    assert listed.returncode == 0, listed.stderr
    mine = [line for line in listed.stdout.splitlines() if key[:11] in line]
    assert len(mine) == 1 and "tenant bakery" in mine[0] and "receptionist demo" in mine[0]
    assert key not in listed.stdout


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port some other program is listening on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield int(other.getsockname()[1])


class Terminal:
    """The demo with a pseudo-terminal as standard input (as from a shell), its output read
    line by line on a thread so the test can wait for a line with a deadline."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self._controller, tty = pty.openpty()
        self.proc = subprocess.Popen(
            [str(RECEPTIONIST), *args],
            env=env,
            cwd=REPO,
            stdin=tty,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        os.close(tty)
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, text: str, timeout_s: float) -> str:
        """Everything printed up to and including the first line holding `text`."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no {text!r} within {timeout_s} s:\n{self.output}"
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                continue
            assert line is not None, f"exited {self.proc.wait()} before {text!r}:\n{self.output}"
            self.lines.append(line)
            if text in line:
                return self.output

    def finish(self, timeout_s: float) -> tuple[int, str]:
        """Exit code and whole output once the process has ended."""
        code = self.proc.wait(timeout=timeout_s)
        while (line := self._queue.get(timeout=timeout_s)) is not None:
            self.lines.append(line)
        return code, self.output

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def close(self) -> None:
        if self.proc.poll() is None:  # a failed test: do not leave a server behind
            self.proc.kill()
            self.proc.wait()
        os.close(self._controller)


def test_from_a_script_it_prints_address_and_key_and_exits(tmp_path: Path, taken_port: int) -> None:
    """Standard input not a terminal (CI, a pipe): one call, the sign-in lines, exit 0. PORT
    is taken by another program, so the demo serves on a free port and prints that one."""
    env = keyless_env(tmp_path, PORT=str(taken_port))
    result = subprocess.run(
        [str(RECEPTIONIST), *DEMO],
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Stored call CA" in result.stdout and "WhatsApp messages" in result.stdout
    port, key = printed(result.stdout)
    assert port not in (taken_port, 0)
    assert "a new key for this demo's database" in result.stdout
    assert "Not kept serving" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert_key_stored(env, key)


def test_exit_flag_wins_over_a_terminal(tmp_path: Path) -> None:
    port = free_port()
    env = keyless_env(tmp_path, PORT=str(port))
    demo = Terminal([*DEMO, "--exit"], env)
    try:
        code, output = demo.finish(DEMO_TIMEOUT_S)
    finally:
        demo.close()
    assert code == 0, output
    assert printed(output)[0] == port  # PORT was free: the demo used it
    assert "Not kept serving" in output and "Serving until Ctrl-C" not in output


def test_from_a_terminal_it_keeps_serving_until_ctrl_c(tmp_path: Path) -> None:
    env = keyless_env(tmp_path, PORT=str(free_port()))
    demo = Terminal(DEMO, env)
    try:
        output = demo.wait_for("Serving until Ctrl-C.", DEMO_TIMEOUT_S)
        port, key = printed(output)
        base = f"http://127.0.0.1:{port}"
        # the server the call went through still answers, with the printed key
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
        tenants = httpx.get(
            f"{base}/api/v1/tenants", headers={"Authorization": f"Bearer {key}"}, timeout=10
        )
        assert tenants.status_code == 200, tenants.text
        assert [t["tenant_id"] for t in tenants.json()] == ["bakery"], tenants.text
        calls = httpx.get(
            f"{base}/api/v1/calls", headers={"Authorization": f"Bearer {key}"}, timeout=10
        )
        assert calls.status_code == 200 and len(calls.json()["items"]) == 1, calls.text
        assert httpx.get(f"{base}/api/v1/tenants", timeout=10).status_code == 401
        assert demo.proc.poll() is None  # still serving after being used

        demo.proc.send_signal(signal.SIGINT)  # Ctrl-C
        code, output = demo.finish(60)
    finally:
        demo.close()
    assert code == 0, output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert output.rstrip().endswith("stopping ..."), output
    with pytest.raises(httpx.TransportError):  # and the server is gone
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
