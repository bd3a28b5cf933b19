"""A throw-away PostgreSQL server for tests, plus helpers to hand out fresh databases.

``ThrowawayPostgres`` runs the real server binaries (``initdb`` + ``pg_ctl``) in a temporary
directory on a free port of 127.0.0.1, with trust authentication and fsync off. As root (CI) the
server runs as the ``postgres`` OS user, because PostgreSQL refuses to run as root.

    server = ThrowawayPostgres().start()
    url = server.url                                    # postgresql://postgres@127.0.0.1:PORT/DB
    other = await server.create_database_async()        # a fresh, empty database's URL
    server.halt(); server.resume()                      # an outage: same port, same data
    server.stop()

Environment:
- ``RECEPTIONIST_TEST_PG=0`` skips the PostgreSQL tests (default: on).
- ``RECEPTIONIST_PG_BIN=/path/to/bin`` chooses the server binaries.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from receptionist.store.db import Database

INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) not found: install postgresql "
    "(./run test does it), set RECEPTIONIST_PG_BIN to their folder, "
    "or set RECEPTIONIST_TEST_PG=0 to skip the PostgreSQL tests"
)

_SAFE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresNotAvailable(RuntimeError):
    """The server binaries are missing or the server would not start."""


def pg_tests_enabled() -> bool:
    """False when ``RECEPTIONIST_TEST_PG`` is set to 0/false/no/off."""
    value = os.environ.get("RECEPTIONIST_TEST_PG", "1").strip().lower()
    return value not in {"0", "false", "no", "off", ""}


def _version_key(path: str) -> tuple[int, ...]:
    match = re.search(r"/postgresql/([\d.]+)/bin", path)
    if not match:
        return (0,)
    return tuple(int(p) for p in match.group(1).split(".") if p.isdigit())


def find_pg_bin() -> Path:
    """The folder holding initdb and pg_ctl: $RECEPTIONIST_PG_BIN, the highest
    /usr/lib/postgresql/*/bin (Debian/Ubuntu), /usr/pgsql-*/bin (RHEL), then PATH."""
    candidates: list[str] = []
    if env := os.environ.get("RECEPTIONIST_PG_BIN"):
        candidates.append(env)
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    candidates += sorted(glob.glob("/usr/pgsql-*/bin"), reverse=True)
    if found := shutil.which("initdb"):
        candidates.append(str(Path(found).parent))
    for folder in candidates:
        p = Path(folder)
        if (p / "initdb").is_file() and (p / "pg_ctl").is_file():
            return p
    raise PostgresNotAvailable(INSTALL_HINT)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _ensure_os_user(name: str) -> None:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )


class ThrowawayPostgres:
    """A private PostgreSQL server in a temp dir; ``start()`` it, ``stop()`` it (idempotent)."""

    def __init__(
        self,
        *,
        bin_dir: str | Path | None = None,
        database: str = "receptionist",
        os_user: str = "postgres",
        start_timeout_s: float = 60.0,
    ) -> None:
        self.bin_dir = Path(bin_dir) if bin_dir else find_pg_bin()
        self.database = database
        self.host = "127.0.0.1"
        self.port = 0
        self.user = "postgres"  # the database superuser (trust auth, no password)
        self._os_user = os_user if _is_root() else None
        self._start_timeout_s = start_timeout_s
        self._tmp: Path | None = None
        self._running = False

    # --- paths and commands -----------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        assert self._tmp is not None, "server not started"
        return self._tmp / "data"

    @property
    def socket_dir(self) -> Path:
        assert self._tmp is not None, "server not started"
        return self._tmp / "sock"

    @property
    def log_file(self) -> Path:
        assert self._tmp is not None, "server not started"
        return self._tmp / "server.log"

    def _cmd(self, tool: str, *args: str) -> list[str]:
        cmd = [str(self.bin_dir / tool), *args]
        if self._os_user:
            return ["runuser", "-u", self._os_user, "--", *cmd]
        return cmd

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C")
        return env

    def _run(self, tool: str, *args: str, timeout: float = 120.0) -> str:
        proc = subprocess.run(
            self._cmd(tool, *args),
            capture_output=True,
            text=True,
            env=self._env(),
            timeout=timeout,
            cwd=str(self._tmp or "/"),
        )
        if proc.returncode != 0:
            log = ""
            if self._tmp and self.log_file.exists():
                log = "\n--- server log ---\n" + self.log_file.read_text(errors="replace")[-4000:]
            raise PostgresNotAvailable(
                f"{tool} {' '.join(args)} failed ({proc.returncode}):\n"
                f"{proc.stdout}\n{proc.stderr}{log}"
            )
        return proc.stdout

    # --- URLs --------------------------------------------------------------------------------

    def url_for(self, database: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    @property
    def url(self) -> str:
        """URL of the server's default test database."""
        return self.url_for(self.database)

    @property
    def admin_url(self) -> str:
        """URL of the ``postgres`` maintenance database (for CREATE/DROP DATABASE)."""
        return self.url_for("postgres")

    # --- life cycle --------------------------------------------------------------------------

    def start(self) -> ThrowawayPostgres:
        if self._running:
            return self
        self._tmp = Path(tempfile.mkdtemp(prefix="receptionist-pg-"))
        try:
            if self._os_user:
                _ensure_os_user(self._os_user)
                # the server user must reach its data dir
                os.chmod(self._tmp, 0o755)
                shutil.chown(self._tmp, user=self._os_user)
            self.socket_dir.mkdir()
            if self._os_user:
                shutil.chown(self.socket_dir, user=self._os_user)
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            )
            last_error: Exception | None = None
            for _attempt in range(3):  # a port can be taken between choosing and binding it
                self.port = free_port(self.host)
                try:
                    self._pg_ctl_start()
                    break
                except PostgresNotAvailable as exc:
                    last_error = exc
            else:
                raise last_error or PostgresNotAvailable("postgres did not start")
            self._running = True
            atexit.register(self.stop)
            self.create_database(self.database)
        except BaseException:
            self.stop()
            raise
        return self

    def _pg_ctl_start(self) -> None:
        options = " ".join(
            [
                f"-p {self.port}",
                f"-c listen_addresses={self.host}",
                f"-c unix_socket_directories={self.socket_dir}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=200",
                "-c shared_buffers=32MB",
            ]
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-o",
            options,
            "-w",
            "-t",
            str(int(self._start_timeout_s)),
            "start",
            timeout=self._start_timeout_s + 10,
        )
        self._running = True

    def halt(self, mode: str = "fast") -> None:
        """An outage: stop the server but keep its data directory and port, so connections
        are refused (not hung) until :meth:`resume`. ``mode``: pg_ctl's shutdown mode, "fast"
        (clients are disconnected, a clean checkpoint) or "immediate" (as a crash: no
        checkpoint, crash recovery when it starts again)."""
        if mode not in ("fast", "immediate"):
            raise ValueError(f"unknown shutdown mode {mode!r}")
        assert self._running, "server not running"
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")
        self._running = False

    def resume(self) -> None:
        """Start the server again after :meth:`halt`, on the same port and data directory
        (the URLs handed out stay valid). Fails if another process took the port meanwhile."""
        assert self._tmp is not None and not self._running, "server not halted"
        self._pg_ctl_start()

    def stop(self) -> None:
        """Stop the server and delete its files. Safe to call more than once."""
        if self._tmp is None:
            return
        if self._running and (self.data_dir / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
        self._running = False
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp = None
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)

    def __enter__(self) -> ThrowawayPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- databases ---------------------------------------------------------------------------

    @staticmethod
    def unique_name(prefix: str = "t") -> str:
        return f"{prefix}_{uuid.uuid4().hex[:16]}"

    def _psql(self, sql: str) -> None:
        self._run(
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-U",
            self.user,
            "-d",
            "postgres",
            "-c",
            sql,
        )

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (blocking, via psql); returns its URL."""
        name = name or self.unique_name()
        _check_name(name)
        self._psql(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        _check_name(name)
        self._psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def create_database_async(self, name: str | None = None) -> str:
        """Create an empty database without blocking the event loop; returns its URL."""
        import asyncpg

        name = name or self.unique_name()
        _check_name(name)
        conn = await asyncpg.connect(
            host=self.host, port=self.port, user=self.user, database="postgres"
        )
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.url_for(name)

    async def drop_database_async(self, name: str) -> None:
        import asyncpg

        _check_name(name)
        conn = await asyncpg.connect(
            host=self.host, port=self.port, user=self.user, database="postgres"
        )
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    @contextlib.asynccontextmanager
    async def fresh_database(self) -> AsyncIterator[str]:
        """A new empty database for the duration of the block (dropped afterwards)."""
        name = self.unique_name()
        url = await self.create_database_async(name)
        try:
            yield url
        finally:
            await self.drop_database_async(name)


def _check_name(name: str) -> None:
    if not _SAFE_NAME.match(name):
        raise ValueError(f"unsafe database name {name!r}")


@contextlib.asynccontextmanager
async def upgraded_database(url: str) -> AsyncIterator[Database]:
    """A ``receptionist.store.db.Database`` on ``url``, migrated to head, disposed afterwards."""
    db = Database(url)
    try:
        await db.upgrade()
        yield db
    finally:
        await db.dispose()
