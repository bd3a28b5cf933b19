"""Running the ASGI app under uvicorn: in-process (demo, tests, bench) or as worker processes.

Several processes on one port (`serve --workers N`) each listen on a socket of their own, bound
with SO_REUSEPORT, so the kernel spreads new connections evenly over them. One listening socket
shared by every process (uvicorn's own supervisor) is not spread: every idle process is woken
for each connection and whoever runs first takes it, which on this machine gave 18 of 20
simultaneous calls to one process and 2 to the other, one core busy and one idle. Where
SO_REUSEPORT does not balance (not Linux), uvicorn's supervisor is used instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from types import FrameType
from typing import Any

import uvicorn

from receptionist import tracing
from receptionist.bridge import drain
from receptionist.bridge.ws_protocol import WS_PROTOCOL
from receptionist.config import Settings, load_settings
from receptionist.logs import configure_logging

log = logging.getLogger("receptionist.serve")

#: The uvicorn factory every server process runs.
APP_FACTORY = "receptionist.bridge.wiring:app_from_env"

# Hard cap on a WebSocket message; frames above MAX_FRAME_BYTES are dropped by the session itself
# (counted, the call goes on), so this only guards memory against absurd frames: the protocol
# parser holds a message whole until it ends, so the cap is what one stream can make us buffer
# (at 200 calls, 16 MiB each was 3.2 GB). Exotel's largest frame (1 s of 16 kHz audio) is ~43 KB
# of JSON; 1 MiB is 4x the default MAX_FRAME_BYTES, and the cap follows a larger setting.
WS_HARD_MAX_BYTES = 1024 * 1024


class _ClientFaultWithoutTraceback(logging.Filter):
    """uvicorn logs a client's invalid UTF-8 text frame with a traceback (`logger.exception`),
    which reads like a server bug; it is the caller's fault, answered with close 1007 and
    recorded on the call. Keep the line, as a warning, without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and str(record.msg).startswith("Invalid UTF-8 sequence"):
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_CLIENT_FAULTS = _ClientFaultWithoutTraceback()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    uvicorn_log = logging.getLogger("uvicorn.error")
    if _CLIENT_FAULTS not in uvicorn_log.filters:
        uvicorn_log.addFilter(_CLIENT_FAULTS)
    return {
        "ws": WS_PROTOCOL,  # uvicorn's websockets-sansio, keeping frames before a fault
        "http": "httptools",
        "loop": "uvloop",
        "ws_max_size": max(WS_HARD_MAX_BYTES, 2 * settings.max_frame_bytes),
        "ws_per_message_deflate": False,  # Exotel does not compress; deflate would cost CPU
        "ws_ping_interval": settings.keepalive_interval_s or None,
        "ws_ping_timeout": settings.keepalive_timeout_s,
        # after the drain (DrainingServer): what is left then are HTTP requests, the live
        # view's event streams and streams that never sent `start`, not calls
        "timeout_graceful_shutdown": 5,
        "log_config": None,  # our own logging set-up
        "access_log": False,
        "lifespan": "on",
    }


@contextlib.asynccontextmanager
async def serve_in_process(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, **options: Any
) -> AsyncIterator[int]:
    """Serve any ASGI `app` on this event loop (the bridge, the HTTP doubles); yields the bound
    port, stops on exit. `options` are uvicorn.Config arguments."""
    options.pop("loop", None)  # we are already inside a running loop
    options.setdefault("log_config", None)
    options.setdefault("access_log", False)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, **options))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises the start-up error
            raise RuntimeError("server stopped during start-up")
        await asyncio.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield bound
    finally:
        server.should_exit = True
        await task


# --- a server that drains its calls before it stops ----------------------------------------------


class DrainingServer(uvicorn.Server):
    """uvicorn's server, but SIGTERM/SIGINT first drains the app's calls (bridge/drain.py):
    uvicorn's own shutdown closes every open WebSocket at once with code 1012, so it starts
    only once the calls have ended and been saved. A second signal makes the calls say goodbye
    now, a third closes them. Exits 0 after a drain (uvicorn would re-raise the signal).

    `ignore_sigint`: a process under the supervisor below, which turns a terminal's Ctrl-C
    (sent to the whole process group) into one SIGTERM per process, so it is not counted twice."""

    def __init__(self, config: uvicorn.Config, *, ignore_sigint: bool = False) -> None:
        super().__init__(config)
        self.ignore_sigint = ignore_sigint
        self._drains: list[drain.Drain] = []
        self._drain_tasks: list[asyncio.Task[None]] = []

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGINT and self.ignore_sigint:
            return
        if not self._drains:
            self._drains = drain.registered()
        if not self.started or not self._drains:  # nothing to drain: stop as uvicorn does
            self.force_exit = self.should_exit
            self.should_exit = True
            return
        for d in self._drains:
            d.request()  # /readyz and new calls see it at once
        if all(d.signals > 3 for d in self._drains):  # asked four times: stop right away
            self.should_exit = self.force_exit = True

    async def on_tick(self, counter: int) -> bool:
        if self._drains and not self.should_exit:
            if not self._drain_tasks:
                self._drain_tasks = [d.start() for d in self._drains]
            if all(t.done() for t in self._drain_tasks):
                for t in self._drain_tasks:
                    if not t.cancelled() and t.exception() is not None:
                        log.error("drain failed", exc_info=t.exception())
                self.should_exit = True
        return await super().on_tick(counter)


def _uvicorn_config(settings: Settings, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        APP_FACTORY, factory=True, host=host, port=port, **uvicorn_options(settings)
    )


def serve_one(settings: Settings) -> int:
    """`receptionist serve` with one process: the app in this process, drained on SIGTERM.
    Returns the exit code (3: the app could not start, as uvicorn.run says)."""
    server = DrainingServer(_uvicorn_config(settings, settings.host, settings.port))
    server.run()
    return 0 if server.started else 3


def stop_bound_s(settings: Settings) -> float:
    """How long a server process may take to stop after SIGTERM: the drain, its goodbyes,
    saving, then uvicorn's own shutdown."""
    shutdown = float(uvicorn_options(settings)["timeout_graceful_shutdown"])
    return settings.drain_timeout_s + settings.drain_goodbye_s + shutdown + 10.0


# --- several processes on one port -------------------------------------------------------------


def reuse_port_balances() -> bool:
    """True where SO_REUSEPORT spreads connections over the sockets sharing a port (Linux);
    BSD and macOS accept the option but hand every connection to one socket."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port with SO_REUSEPORT (not listening yet)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _refuse_if_listened_on(host: str, port: int) -> None:
    """Raise OSError (address in use) when any program listens on host:port, even one that
    set SO_REUSEPORT too: a second `serve --workers N` started by mistake would otherwise
    silently share the port with the first. SO_REUSEADDR alone lets a recent restart's
    TIME_WAIT connections pass."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


class _ReadyServer(DrainingServer):
    """The draining server that says when it is serving: the supervisor replaces a process
    that dies after that, and stops everything when one dies before (it would fail again)."""

    def __init__(self, config: uvicorn.Config, ready: Any) -> None:
        super().__init__(config, ignore_sigint=True)
        self.ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self.ready.set()
            log.info("server process %d serving", os.getpid())


def _server_process(host: str, port: int, ready: Any) -> None:  # pragma: no cover - a child
    """One server process: its own SO_REUSEPORT socket on the shared port, then uvicorn."""
    settings = load_settings()  # the parent checked them; the environment is the same
    configure_logging(settings)
    tracing.setup_tracing()
    sock = reuse_port_socket(host, port)
    _ReadyServer(_uvicorn_config(settings, host, port), ready).run(sockets=[sock])


class _Supervisor:
    """Starts the server processes, starts a replacement for one that dies, and on SIGTERM or
    SIGINT asks each to stop (each drains its calls: see DrainingServer) and waits for them;
    every further signal is passed on (goodbye now, then close now)."""

    def __init__(self, host: str, port: int, count: int, stop_timeout_s: float) -> None:
        self.host, self.port, self.count = host, port, count
        self.stop_timeout_s = stop_timeout_s
        self.ctx = multiprocessing.get_context("spawn")  # no forked event loop or connections
        self.procs: list[tuple[Any, Any]] = []  # (process, its "serving" event)
        self.stopping = False

    def _start_one(self) -> tuple[Any, Any]:
        ready = self.ctx.Event()
        proc = self.ctx.Process(
            target=_server_process, args=(self.host, self.port, ready), name="receptionist-serve"
        )
        proc.start()
        return proc, ready

    def _on_signal(self, sig: int, _frame: FrameType | None) -> None:
        if self.stopping:  # again: pass it on, the processes cut their drain short
            self._signal_all()
        self.stopping = True

    def _signal_all(self) -> None:
        for proc, _ in self.procs:
            if proc.is_alive() and proc.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        self.procs = [self._start_one() for _ in range(self.count)]
        log.info(
            "%d server processes on http://%s:%d (SO_REUSEPORT), pids %s",
            self.count,
            self.host,
            self.port,
            " ".join(str(p.pid) for p, _ in self.procs),
        )
        code = 0
        while not self.stopping:
            multiprocessing.connection.wait([p.sentinel for p, _ in self.procs], timeout=0.5)
            for i, (proc, ready) in enumerate(self.procs):
                if self.stopping or proc.is_alive():
                    continue
                if not ready.is_set():  # a broken app or setting: a replacement fails the same
                    log.error("server process %d could not start; stopping", proc.pid)
                    self.stopping, code = True, 1
                    break
                log.error("server process %d ended (%s); starting another", proc.pid, proc.exitcode)
                _forget_metrics_of(proc.pid)
                self.procs[i] = self._start_one()
        self._stop_all()
        return code

    def _stop_all(self) -> None:
        self._signal_all()
        deadline = time.monotonic() + self.stop_timeout_s
        for proc, _ in self.procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                log.error("server process %d did not stop in time; killed", proc.pid)
                proc.kill()
                proc.join()


def _forget_metrics_of(pid: int | None) -> None:
    """A dead server process's live gauges (active calls, loop lag) leave the sums; its
    counters stay (its calls happened)."""
    if pid is None:
        return
    from receptionist.observe.metrics import mark_process_dead

    try:
        mark_process_dead(pid)
    except OSError as exc:  # the metrics only; the replacement starts all the same
        log.warning("metrics of server process %d not cleared: %s", pid, exc)


@contextlib.contextmanager
def _shared_metrics_dir() -> Any:
    """A fresh directory for this invocation's multiprocess metrics (prometheus_client), set
    in PROMETHEUS_MULTIPROC_DIR before any server process starts (each picks the mode when it
    first imports prometheus_client), removed at the end: a restart's counters start from zero
    and no earlier run's files are summed in."""
    from receptionist.observe.metrics import MULTIPROC_ENV

    path = tempfile.mkdtemp(prefix="receptionist-metrics-")
    previous = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = path
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous
        shutil.rmtree(path, ignore_errors=True)


def serve_processes(settings: Settings) -> int:
    with _shared_metrics_dir():
        return _serve_processes(settings)


def _serve_processes(settings: Settings) -> int:
    """Run `settings.workers` server processes on settings.host:port; returns the exit code.

    The parent keeps a socket bound to the port (SO_REUSEPORT, never listening: it takes no
    connections) for its whole life, so a port in use fails here with one clear error, port 0
    picks one port for every process, and no other program can take the port between a dead
    process and its replacement."""
    os.environ["WORKERS"] = str(settings.workers)  # each process's settings say it is one of N
    if settings.database_url.strip().lower().startswith("sqlite"):
        # the live feed is in-process on SQLite (store/live.py): calls, jobs and the API are
        # shared through the file, but an SSE stream sees only the calls of its own process
        log.warning(
            "%d processes on SQLite: the dashboard's live view shows only the calls of the"
            " process a browser reaches; use PostgreSQL for several processes",
            settings.workers,
        )
    if not reuse_port_balances():
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            **uvicorn_options(settings),
        )
        return 0
    try:
        if settings.port:
            _refuse_if_listened_on(settings.host, settings.port)
        reserved = reuse_port_socket(settings.host, settings.port)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", settings.host, settings.port, exc.strerror or exc)
        return 1
    with reserved:
        port = int(reserved.getsockname()[1])
        return _Supervisor(settings.host, port, settings.workers, stop_bound_s(settings)).run()
