"""Tenants edited through the API (TENANTS_SOURCE=database; SQLite and PostgreSQL): read, save
a change checked like `tenants validate`, a stale save refused, problems by file and line, keys
kept to their tenant, the body bounded and read only after the key and tenant are checked,
versions listed and restored, and a server on folders saying so."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from starlette.routing import Mount

from receptionist.bridge.app import create_app
from receptionist.bridge.server import serve_in_process
from receptionist.bridge.wiring import build_context
from receptionist.config import load_settings
from receptionist.engines.base import EngineError, EngineRequest, VoiceEngine
from receptionist.store.api_keys import create_key
from receptionist.store.db import Database

EXAMPLES = Path(__file__).resolve().parents[2] / "tenants"
NAME = 'name = "Sweet Crumbs Bakery"'


def no_engine(request: EngineRequest) -> VoiceEngine:
    raise EngineError("these tests place no calls")


@dataclass
class Server:
    url: str
    keys: dict[str, str]

    def client(self, who: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.keys[who]}"} if who else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)


async def _server(db: Database, tmp_path: Path, source: str) -> AsyncIterator[Server]:
    root = tmp_path / "tenants"
    for tid in ("bakery", "saloon"):
        shutil.copytree(EXAMPLES / tid, root / tid)
    keys = {
        "bakery": (await create_key(db, tenant="bakery"))[1],
        "saloon": (await create_key(db, tenant="saloon"))[1],
        "admin": (await create_key(db, tenant=None))[1],
    }
    cfg = load_settings(
        database_url=db.url,
        tenants_dir=root,
        tenants_source=source,
        spool_dir=tmp_path / "spool",
        run_worker=False,
    )
    app = create_app(build_context(cfg, db=db, engine_factory=no_engine))
    assert any(isinstance(r, Mount) for r in app.routes)
    async with serve_in_process(app) as port:
        yield Server(f"http://127.0.0.1:{port}", keys)


@pytest.fixture
async def server(db: Database, tmp_path: Path) -> AsyncIterator[Server]:
    async for s in _server(db, tmp_path, "database"):
        yield s


async def test_read_change_and_see_it(server: Server) -> None:
    async with server.client("bakery") as c:
        got = (await c.get("/api/v1/tenants/bakery/files")).json()
        assert got["version"] == 1 and NAME in got["files"]["tenant.toml"]
        files = {
            **got["files"],
            "tenant.toml": got["files"]["tenant.toml"].replace(NAME, 'name = "Sweet Crumbs Cafe"'),
        }
        saved = await c.put(
            "/api/v1/tenants/bakery/files",
            json={"base_version": 1, "files": files, "note": "new name"},
        )
        assert saved.status_code == 200, saved.text
        assert saved.json() == {"tenant_id": "bakery", "version": 2, "created": True}
        listed = (await c.get("/api/v1/tenants")).json()
        assert [t["name"] for t in listed] == ["Sweet Crumbs Cafe"]  # this process: at once
        again = await c.put(
            "/api/v1/tenants/bakery/files", json={"base_version": 2, "files": files}
        )
        assert again.json()["created"] is False  # nothing changed: no version
        versions = (await c.get("/api/v1/tenants/bakery/versions")).json()
        assert [(v["version"], v["in_force"]) for v in versions] == [(2, True), (1, False)]
        assert versions[0]["note"] == "new name" and versions[0]["author"].startswith("key:")


async def test_a_stale_save_is_refused_and_nothing_is_lost(server: Server) -> None:
    async with server.client("bakery") as first, server.client("admin") as second:
        base = (await first.get("/api/v1/tenants/bakery/files")).json()
        mine = {**base["files"], "input_files/notes.md": "Closed on Diwali."}
        theirs = {**base["files"], "input_files/notes.md": "Closed on Holi."}
        assert (
            await second.put(
                "/api/v1/tenants/bakery/files", json={"base_version": 1, "files": theirs}
            )
        ).status_code == 200
        late = await first.put(
            "/api/v1/tenants/bakery/files", json={"base_version": 1, "files": mine}
        )
        assert late.status_code == 409 and late.json()["error"]["code"] == "version_conflict"
        now = (await first.get("/api/v1/tenants/bakery/files")).json()
        assert now["files"]["input_files/notes.md"] == "Closed on Holi."


async def test_a_broken_edit_shows_every_problem_and_saves_nothing(server: Server) -> None:
    async with server.client("bakery") as c:
        base = (await c.get("/api/v1/tenants/bakery/files")).json()
        toml = base["files"]["tenant.toml"].replace(
            'timezone = "Asia/Kolkata"', 'timezone = "Mars/Olympus"'
        )
        broken = {**base["files"], "tenant.toml": toml, "prompts/assistant.txt": " "}
        got = await c.put("/api/v1/tenants/bakery/files", json={"base_version": 1, "files": broken})
        assert got.status_code == 422, got.text
        problems = got.json()["error"]["problems"]
        where = {(p["file"], p["line"] is not None) for p in problems}
        assert ("tenant.toml", True) in where and ("prompts/assistant.txt", False) in where
        outside = {**base["files"], "../escape.txt": "x"}
        bad_path = await c.put(
            "/api/v1/tenants/bakery/files", json={"base_version": 1, "files": outside}
        )
        assert bad_path.status_code == 422 and "not a plain relative path" in bad_path.text
        assert (await c.get("/api/v1/tenants/bakery/files")).json()["version"] == 1


async def test_keys_reach_their_own_tenant_and_bodies_are_bounded(server: Server) -> None:
    huge = b"x" * (2 * 1024 * 1024)
    async with server.client("bakery") as bakery, server.client(None) as nobody:
        # the body is never read before the key and the tenant are checked
        other = await bakery.put("/api/v1/tenants/saloon/files", content=huge)
        assert other.status_code == 404
        assert (await nobody.put("/api/v1/tenants/bakery/files", content=huge)).status_code == 401
        big = await bakery.put("/api/v1/tenants/bakery/files", content=huge)
        assert big.status_code == 413
        junk = await bakery.put("/api/v1/tenants/bakery/files", content=b"{not json")
        assert junk.status_code == 400
        assert (await bakery.get("/api/v1/tenants/saloon/versions")).status_code == 404
        new = await bakery.put(
            "/api/v1/tenants/bakery/files", json={"base_version": None, "files": {}}
        )
        assert new.status_code == 403  # only an admin creates


async def test_an_admin_creates_and_restores(server: Server) -> None:
    async with server.client("admin") as admin:
        saloon = (await admin.get("/api/v1/tenants/saloon/files")).json()["files"]
        made = await admin.put(
            "/api/v1/tenants/glowup/files", json={"base_version": None, "files": saloon}
        )
        assert made.status_code == 200 and made.json()["version"] == 1
        changed = {**saloon, "input_files/extra.md": "Open on Mondays."}
        await admin.put("/api/v1/tenants/glowup/files", json={"base_version": 1, "files": changed})
        back = await admin.post("/api/v1/tenants/glowup/versions/1/restore")
        assert back.status_code == 200 and back.json()["version"] == 3
        files = (await admin.get("/api/v1/tenants/glowup/files")).json()["files"]
        assert "input_files/extra.md" not in files
        assert (await admin.post("/api/v1/tenants/glowup/versions/9/restore")).status_code == 404


async def test_a_server_on_folders_says_where_to_edit(db: Database, tmp_path: Path) -> None:
    async for server in _server(db, tmp_path, "folders"):
        async with server.client("bakery") as c:
            got = await c.get("/api/v1/tenants/bakery/files")
            assert got.status_code == 409 and got.json()["error"]["code"] == "tenants_in_folders"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("\nactive = true\n", "\nactive = false\n"),  # an operator's switch, either way
        ('caller_id = "08047112233"', 'caller_id = "08049990000"'),  # another business's
    ],
)
async def test_an_owner_cannot_change_the_operators_keys(
    server: Server, old: str, new: str
) -> None:
    async with server.client("bakery") as owner, server.client("admin") as admin:
        base = (await owner.get("/api/v1/tenants/bakery/files")).json()
        toml = base["files"]["tenant.toml"]
        assert old in toml
        files = {**base["files"], "tenant.toml": toml.replace(old, new, 1)}
        got = await owner.put(
            "/api/v1/tenants/bakery/files", json={"base_version": 1, "files": files}
        )
        assert got.status_code == 403, got.text
        assert got.json()["error"]["code"] == "operator_only"
        assert (await owner.get("/api/v1/tenants/bakery/files")).json()["version"] == 1
        done = await admin.put(
            "/api/v1/tenants/bakery/files", json={"base_version": 1, "files": files}
        )
        assert done.status_code == 200, done.text


async def test_an_owner_cannot_point_a_secret_at_another_variable(server: Server) -> None:
    """`*_env` names a variable of the server's environment: the operator's to choose."""
    hook = '\n[[webhooks]]\nurl = "https://crm.example/hook"\nsecret_env = "{}"\n'
    async with server.client("bakery") as owner:
        base = (await owner.get("/api/v1/tenants/bakery/files")).json()
        toml = base["files"]["tenant.toml"] + hook.format("GEMINI_API_KEY")
        got = await owner.put(
            "/api/v1/tenants/bakery/files",
            json={"base_version": 1, "files": {**base["files"], "tenant.toml": toml}},
        )
        assert got.status_code == 403 and "webhooks[0].secret_env" in got.text, got.text
        assert (await owner.get("/api/v1/tenants/bakery/files")).json()["version"] == 1
