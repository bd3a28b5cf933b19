"""`receptionist tenants sync / versions / export / restore / list` as a user types them (the
installed console script, separate processes, a SQLite file), and `serve --workers 2` with
TENANTS_SOURCE=database answering from the database, both processes seeing a change saved by
another process without a restart."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx

from receptionist.tenants.bundle import read_folder
from tests.integration.bridge_harness import REPO
from tests.integration.test_console_commands import RECEPTIONIST, free_port, keyless_env, run

NAME_LINE = 'name = "Sweet Crumbs Bakery"'


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    root = tmp_path / "tenants"
    if not root.exists():
        shutil.copytree(REPO / "tenants" / "bakery", root / "bakery")
    return keyless_env(tmp_path, TENANTS_DIR=str(root), **extra)


def test_sync_versions_export_restore(tmp_path: Path) -> None:
    env = _env(tmp_path)
    root = Path(env["TENANTS_DIR"])
    first = run(["tenants", "sync"], env)
    assert first.returncode == 0, first.stderr
    assert "updated   bakery (version 1)" in first.stdout
    assert "unchanged bakery (version 1)" in run(["tenants", "sync"], env).stdout

    notes = root / "bakery" / "input_files" / "notes.md"
    notes.write_text("Closed on Diwali.\n")
    assert "updated   bakery (version 2)" in run(["tenants", "sync", "bakery"], env).stdout
    versions = run(["tenants", "versions", "bakery"], env)
    assert versions.returncode == 0
    lines = versions.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["v2", "v1"] and "folder" in lines[0]

    restored = run(["tenants", "restore", "bakery", "1"], env)
    assert restored.returncode == 0, restored.stderr
    assert "restored bakery version 1 as version 3" in restored.stdout
    # the folder still has notes.md, version 3 does not: a sync would undo the restore
    refused = run(["tenants", "sync"], env)
    assert refused.returncode == 1 and "--force" in refused.stdout

    out = tmp_path / "export" / "bakery"
    out.mkdir(parents=True)
    (out / "input_files").mkdir()
    (out / "input_files" / "stale.md").write_text("left from before\n")
    (out / "README.txt").write_text("not a tenant file: left alone\n")
    exported = run(["tenants", "export", "bakery", str(out)], env)
    assert exported.returncode == 0, exported.stderr
    assert "version 3" in exported.stdout
    assert not (out / "input_files" / "stale.md").exists()
    assert (out / "README.txt").exists()
    assert (
        read_folder(out).content_hash() == read_folder(REPO / "tenants" / "bakery").content_hash()
    )

    listed = run(["tenants", "list"], {**env, "TENANTS_SOURCE": "database"})
    assert (
        listed.returncode == 0 and "v3" in listed.stdout and "Sweet Crumbs Bakery" in listed.stdout
    )


def test_bad_input(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert run(["tenants", "versions", "ghost"], env).returncode == 1
    assert run(["tenants", "restore", "ghost", "1"], env).returncode == 1
    missing = run(["tenants", "export", "ghost", str(tmp_path / "x")], env)
    assert missing.returncode == 1 and "no tenant 'ghost'" in missing.stderr
    (Path(env["TENANTS_DIR"]) / "bakery" / "tenant.toml").write_text("name = \n")
    broken = run(["tenants", "sync"], env)
    assert broken.returncode == 1 and "skipped" in broken.stdout


def _tenants_seen(port: int, key: str) -> dict[str, str]:
    r = httpx.get(
        f"http://127.0.0.1:{port}/api/v1/tenants",
        headers={"Authorization": f"Bearer {key}"},
        timeout=5,
    )
    r.raise_for_status()
    return {t["tenant_id"]: t["name"] for t in r.json()}


def test_serve_answers_from_the_database_and_sees_a_change(tmp_path: Path) -> None:
    env = _env(tmp_path, TENANTS_SOURCE="database", RUN_WORKER="false")
    root = Path(env["TENANTS_DIR"])
    key_out = run(["keys", "create", "--admin", "--name", "ops"], env)
    assert key_out.returncode == 0, key_out.stderr
    key = key_out.stdout.strip().splitlines()[-1]
    port = free_port()
    proc = subprocess.Popen(
        # two processes on the port (SO_REUSEPORT): each keeps its own copy and must see the edit
        [str(RECEPTIONIST), "serve", "--workers", "2", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        seen: dict[str, str] = {}
        while time.monotonic() < deadline and not seen:
            try:
                seen = _tenants_seen(port, key)
            except httpx.HTTPError:
                time.sleep(0.2)
        assert seen == {"bakery": "Sweet Crumbs Bakery"}  # the folder, imported at start

        toml = root / "bakery" / "tenant.toml"
        assert NAME_LINE in toml.read_text()
        toml.write_text(toml.read_text().replace(NAME_LINE, NAME_LINE.replace("Bakery", "Cafe")))
        assert run(["tenants", "sync"], env).returncode == 0  # another process saves

        # each process polls the versions in force every 2 s; the kernel picks the process of
        # each new connection, so twenty answers in a row from the new version mean both have it
        deadline = time.monotonic() + 30
        in_a_row = 0
        while time.monotonic() < deadline and in_a_row < 20:
            seen = _tenants_seen(port, key)
            in_a_row = in_a_row + 1 if seen["bakery"] == "Sweet Crumbs Cafe" else 0
            time.sleep(0.05)
        assert in_a_row >= 20, seen
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_tenant_key_checks_the_configured_source(tmp_path: Path) -> None:
    env = _env(tmp_path, TENANTS_SOURCE="database")
    assert run(["keys", "create", "--tenant", "bakery"], env).returncode == 2  # not synced yet
    assert run(["tenants", "sync"], env).returncode == 0
    made = run(["keys", "create", "--tenant", "bakery"], env)
    assert made.returncode == 0, made.stderr
    assert run(["keys", "create", "--tenant", "ghost"], env).returncode == 2
