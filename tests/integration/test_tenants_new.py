"""`receptionist tenants new <id> --from FILE` as a user types it (the installed console script):
the template draft, the Gemini draft through the real SDK against the REST double, the prompt,
TENANTS_SOURCE=database, and every kind of bad input."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from receptionist.sim.gemini_rest import FakeGeminiRest, Fault
from receptionist.tenants.bundle import read_folder
from receptionist.tenants.loading import load_tenant
from tests.integration.bridge_harness import REPO
from tests.integration.test_console_commands import RECEPTIONIST, keyless_env
from tests.unit.test_tenant_draft import BAKERY


def run(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The console script with `stdin` typed at it (empty: the terminal is closed)."""
    return subprocess.run(
        [str(RECEPTIONIST), *args],
        env=env,
        cwd=REPO,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _setup(tmp_path: Path, text: str | bytes = BAKERY, **extra: str) -> tuple[dict[str, str], Path]:
    (tmp_path / "tenants").mkdir(exist_ok=True)
    desc = tmp_path / "business.txt"
    desc.write_bytes(text.encode() if isinstance(text, str) else text)
    return keyless_env(tmp_path, TENANTS_DIR=str(tmp_path / "tenants"), **extra), desc


def test_template_draft_saved_with_yes(tmp_path: Path) -> None:
    env, desc = _setup(tmp_path)
    done = run(["tenants", "new", "crumbs", "--from", str(desc), "--yes"], env)
    assert done.returncode == 0, done.stderr
    assert "(template)" in done.stdout and "wrote 7 file(s)" in done.stdout
    assert "tenant.toml" in done.stdout and "GREETING:" in done.stdout  # shown for review
    assert "warning" not in done.stderr
    tenant, problems = load_tenant(tmp_path / "tenants", "crumbs")
    assert tenant is not None, problems
    assert tenant.greeting.startswith("Hello, thank you for calling Sweet Crumbs Bakery")
    assert tenant.owner_phone == "+919845012345"
    validated = run(["tenants", "validate", "crumbs"], env)
    assert validated.returncode == 0 and "ok" in validated.stdout
    # it exists now: refused, nothing changed
    again = run(["tenants", "new", "crumbs", "--from", str(desc), "--yes"], env)
    assert again.returncode == 1 and "already exists" in again.stderr


def test_the_prompt_saves_only_on_yes(tmp_path: Path) -> None:
    env, desc = _setup(tmp_path)
    out = tmp_path / "elsewhere" / "crumbs"
    args = ["tenants", "new", "crumbs", "--from", str(desc), "--out", str(out)]
    declined = run(args, env, stdin="n\n")
    assert declined.returncode == 1 and "not saved" in declined.stdout and not out.exists()
    closed = run(args, env, stdin="")
    assert closed.returncode == 1 and not out.exists()
    accepted = run(args, env, stdin="y\n")
    assert accepted.returncode == 0, accepted.stderr
    assert load_tenant(out.parent, "crumbs")[0] is not None
    assert not (tmp_path / "tenants" / "crumbs").exists()


def test_database_source_saves_version_1(tmp_path: Path) -> None:
    env, desc = _setup(tmp_path, TENANTS_SOURCE="database")
    assert run(["db", "upgrade"], env).returncode == 0
    done = run(["tenants", "new", "crumbs", "--from", str(desc), "--yes"], env)
    assert done.returncode == 0, done.stderr
    assert "saved crumbs as version 1 in the database" in done.stdout
    versions = run(["tenants", "versions", "crumbs"], env)
    assert versions.returncode == 0 and versions.stdout.split()[0] == "v1"
    listed = run(["tenants", "list"], env)
    assert "Sweet Crumbs Bakery" in listed.stdout and "v1" in listed.stdout
    # the folder is gone but the database has it: still refused
    shutil.rmtree(tmp_path / "tenants" / "crumbs")
    again = run(["tenants", "new", "crumbs", "--from", str(desc), "--yes"], env)
    assert again.returncode == 1 and "crumbs" in again.stderr
    assert not (tmp_path / "tenants" / "crumbs").exists()


def test_missing_prices_and_hours_warn_and_still_save(tmp_path: Path) -> None:
    env, desc = _setup(tmp_path, "Ravi Hardware\nMG Road, Mysuru\nOwner: 9845012345\n")
    done = run(["tenants", "new", "ravi", "--from", str(desc), "--yes"], env)
    assert done.returncode == 0, done.stderr
    assert "warning: no prices found" in done.stderr
    assert "warning: no opening hours found" in done.stderr
    files = read_folder(tmp_path / "tenants" / "ravi").files
    assert b"TODO" in files["input_files/prices.md"] and b"TODO" in files["input_files/hours.md"]


@pytest.mark.parametrize(
    ("tenant_id", "text", "why"),
    [
        ("shop", b"", "is empty"),
        ("shop", b"x" * (64 * 1024 + 1), "at most 65536"),
        ("shop", b"Cafe \xe9\xff menu", "not UTF-8"),
        ("Bad.Id", BAKERY.encode(), "not a valid tenant id"),
        ("../up", BAKERY.encode(), "not a valid tenant id"),
    ],
)
def test_bad_input_is_refused_and_nothing_written(
    tmp_path: Path, tenant_id: str, text: bytes, why: str
) -> None:
    env, desc = _setup(tmp_path, text)
    done = run(["tenants", "new", tenant_id, "--from", str(desc), "--yes"], env)
    assert done.returncode == 1 and why in done.stderr, done.stderr
    assert list((tmp_path / "tenants").iterdir()) == []


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    env, _ = _setup(tmp_path)
    done = run(["tenants", "new", "shop", "--from", str(tmp_path / "nope.txt"), "--yes"], env)
    assert done.returncode == 1 and "cannot read" in done.stderr


# ------------------------------------------------------------------ with Gemini (the double)

GEMINI_ANSWER = {
    "name": "Sweet Crumbs Bakery",
    "kind": "food",
    "owner_phone": "+919845012345",
    "languages": ["en-IN", "kn_in", "English", "kn-IN"],  # cleaned to en-IN, kn-IN
    "greeting": "Namaskara, Sweet Crumbs Bakery! What can we bake for you?",
    "prices": [{"item": "Black Forest cake 1 kg", "price": "750"}],
    "hours": ["Every day 9 am to 9 pm"],
    "address": "12, 5th Cross, Koramangala",
    "callers_want": ["Birthday cakes"],
    "notes": ["Eggless on request"],
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeGeminiRest]:
    async with FakeGeminiRest(api_key="test-key") as server:
        yield server


def _gemini_env(tmp_path: Path, fake: FakeGeminiRest) -> tuple[dict[str, str], Path]:
    return _setup(tmp_path, GEMINI_API_KEY="test-key", GEMINI_ANALYSIS_BASE_URL=fake.base_url)


async def test_gemini_drafts_with_a_schema(tmp_path: Path, fake: FakeGeminiRest) -> None:
    env, desc = _gemini_env(tmp_path, fake)
    fake.script(json.dumps(GEMINI_ANSWER))
    args = ["tenants", "new", "crumbs", "--from", str(desc), "--yes"]
    done = await asyncio.to_thread(run, args, env)
    assert done.returncode == 0, done.stderr
    assert "(gemini)" in done.stdout
    (request,) = fake.requests
    schema = request.response_schema
    assert schema is not None and "prices" in schema["properties"]
    assert "Black Forest cake 1 kg - 750" in "".join(t for _, t in request.texts)
    tenant, problems = load_tenant(tmp_path / "tenants", "crumbs")
    assert tenant is not None, problems
    assert tenant.greeting == GEMINI_ANSWER["greeting"]
    assert tenant.languages == ("en-IN", "kn-IN")


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (Fault(503), "Gemini 503"),
        ({**GEMINI_ANSWER, "name": "  \u2028 "}, "does not validate"),
        ({**GEMINI_ANSWER, "kind": "spaceship"}, "not a draft"),
        ("not json at all", "not a draft"),
    ],
)
async def test_a_bad_gemini_draft_falls_back_to_the_template(
    tmp_path: Path, fake: FakeGeminiRest, answer: object, why: str
) -> None:
    env, desc = _gemini_env(tmp_path, fake)
    fake.script(answer if isinstance(answer, str | Fault) else json.dumps(answer))
    args = ["tenants", "new", "crumbs", "--from", str(desc), "--yes"]
    done = await asyncio.to_thread(run, args, env)
    assert done.returncode == 0, done.stderr
    assert "(template)" in done.stdout
    assert why in done.stderr and "used the template" in done.stderr
    tenant, problems = load_tenant(tmp_path / "tenants", "crumbs")
    assert tenant is not None, problems
    assert tenant.languages == ("en-IN", "hi-IN", "kn-IN")  # the template's reading


async def test_an_owner_number_gemini_made_up_is_not_used(
    tmp_path: Path, fake: FakeGeminiRest
) -> None:
    env, desc = _gemini_env(tmp_path, fake)
    fake.script(json.dumps({**GEMINI_ANSWER, "owner_phone": "+919999999999"}))
    args = ["tenants", "new", "crumbs", "--from", str(desc), "--yes"]
    done = await asyncio.to_thread(run, args, env)
    assert done.returncode == 0 and "(gemini)" in done.stdout, done.stderr
    tenant, problems = load_tenant(tmp_path / "tenants", "crumbs")
    assert tenant is not None, problems
    assert tenant.owner_phone == "+919845012345"  # the one in the description
