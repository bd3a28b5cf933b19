"""A tenant's settings edited from the dashboard over real HTTP (tenants in the database, both
databases): a form per area saved through the same check as `tenants validate`, problems shown
beside their fields with nothing saved, a stale save told and kept on the page, versions with
who changed what and their restore, an admin's deactivate, a test call with typed lines, a new
tenant drafted from a description and saved only when accepted; other tenants' pages, CSRF and
hostile text."""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from receptionist.bridge.server import serve_in_process
from receptionist.config import load_settings
from receptionist.onboarding import settings_drafter
from receptionist.sim.gemini_rest import FakeGeminiRest, Fault
from receptionist.store.api_keys import create_key
from receptionist.store.db import Database
from receptionist.store.tenant_versions import list_versions, load_version
from receptionist.stored_tenants import StoredTenants
from receptionist.tenants.repository import InactiveTenant
from receptionist.web.dashboard import Options, create_dashboard
from receptionist.web.dashboard.guard import LoginBrake
from receptionist.web.dashboard.tenant_pages import Drafter
from receptionist.web.deps import WebDeps
from receptionist.web.test_call import TestCallBrake
from tests.integration.test_dashboard import HOSTILE, Browser
from tests.integration.test_tenant_edit_api import _server

EXAMPLES = Path(__file__).resolve().parents[2] / "tenants"
NAME = "Sweet Crumbs Bakery"
ORDER_LINES = (
    "Hi, I want to order a Black Forest cake 1 kg\nMy name is Ravi\nPickup tomorrow please\n"
)


@dataclass
class Site:
    url: str
    db: Database
    tenants: StoredTenants
    keys: dict[str, str]
    browsers: list[Browser]

    async def sign_in(self, who: str) -> Browser:
        b = Browser(self.url)
        self.browsers.append(b)
        form = await b.get("/app/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token
        got = await b.post("/app/login", {"key": self.keys[who], "csrf": token.group(1)})
        assert got.status_code == 303, got.text[:300]
        return b


@contextlib.asynccontextmanager
async def settings_site(
    db: Database, tmp_path: Path, drafter: Drafter | None = None
) -> AsyncIterator[Site]:
    """The dashboard on tenants kept in the database (the bakery and the saloon imported from
    the example folders as version 1), with an owner's key for each and an admin's."""
    root = tmp_path / "tenants"
    for tid in ("bakery", "saloon"):
        shutil.copytree(EXAMPLES / tid, root / tid)
    tenants = StoredTenants(db)
    await tenants.start(root)
    keys = {
        "bakery": (await create_key(db, tenant="bakery"))[1],
        "saloon": (await create_key(db, tenant="saloon"))[1],
        "admin": (await create_key(db, tenant=None, name="operator"))[1],
    }
    deps = WebDeps(db=db, tenants=tenants, usd_inr=Decimal("84"))
    options = Options(
        brake=LoginBrake(delay_s=0), session_recheck_s=0, test_calls=TestCallBrake(per_window=3)
    )
    if drafter is not None:
        options.drafter = drafter
    app = Starlette(routes=[Mount("/app", create_dashboard(deps, None, options))])
    async with serve_in_process(app) as port:
        s = Site(f"http://127.0.0.1:{port}", db, tenants, keys, [])
        try:
            yield s
        finally:
            for b in s.browsers:
                await b.aclose()


@pytest.fixture
async def site(db: Database, tmp_path: Path) -> AsyncIterator[Site]:
    async with settings_site(db, tmp_path) as s:
        yield s


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page[:300]
    return found.group(1)


def form_values(page: str, area: str) -> dict[str, str]:
    """The fields of one area's form as a browser sends them (inputs, selects, textareas, the
    checkboxes that are checked)."""
    start = page.index(f'data-testid="form-{area}"')
    body = page[start : page.index("</form>", start)]
    values = {
        m.group(1): html.unescape(m.group(2))
        for m in re.finditer(
            r'<input (?![^>]*checkbox)[^>]*name="([^"]+)"[^>]*value="([^"]*)"', body
        )
    }
    for m in re.finditer(r'<input type="checkbox" name="([^"]+)" value="1"[^>]* checked', body):
        values[m.group(1)] = "1"
    for m in re.finditer(r'<select name="([^"]+)".*?</select>', body, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', m.group(0))
        first = re.search(r'<option value="([^"]*)"', m.group(0))
        values[m.group(1)] = html.unescape((chosen or first).group(1)) if (chosen or first) else ""
    for m in re.finditer(r'<textarea name="([^"]+)"[^>]*>(.*?)</textarea>', body, re.S):
        values[m.group(1)] = html.unescape(m.group(2))
    return values


async def save(b: Browser, tenant: str, area: str, **changes: str) -> tuple[int, str]:
    page = (await b.get(f"/app/tenants/{tenant}")).text
    data = form_values(page, area) | changes
    got = await b.post(f"/app/tenants/{tenant}/save", data)
    if got.status_code == 303:
        return 303, (await b.get(got.headers["location"])).text
    return got.status_code, got.text


async def in_force(site: Site, tenant: str) -> int:
    stored = await load_version(site.db, tenant)
    assert stored is not None
    return stored.info.version


# --- saving, and the history ----------------------------------------------------------------


async def test_an_owner_saves_a_field_and_the_history_says_who_and_what(site: Site) -> None:
    b = await site.sign_in("bakery")
    assert (await b.get("/app/tenants")).headers["location"] == "/app/tenants/bakery"
    page = (await b.get("/app/tenants/bakery")).text
    assert form_values(page, "business")["business.name"] == NAME
    status, page = await save(b, "bakery", "business", **{"business.name": "Sweet Crumbs Cafe"})
    assert status == 303 and "Saved as a new version." in page
    assert form_values(page, "business")["business.name"] == "Sweet Crumbs Cafe"
    assert site.tenants.get("bakery").name == "Sweet Crumbs Cafe"  # in force at once
    versions = (await b.get("/app/tenants/bakery/versions")).text
    rows = re.findall(r'data-testid="version-note">([^<]*)<', versions)
    assert rows[0] == "tenant.toml: name"
    who = re.findall(r'data-testid="version-author" title="([^"]*)">([^<]*)<', versions)
    assert who[0][0].startswith("key:") and who[0][1].startswith("Owner · ")
    assert who[1] == ("folder", "folder")  # imported from the tenant's folder
    history = await list_versions(site.db, "bakery")
    assert history[0].author.startswith("key:") and history[0].version == 2
    # the comments of tenant.toml are kept
    stored = await load_version(site.db, "bakery")
    assert stored is not None and "Quick reference" in stored.files["tenant.toml"]


async def test_each_area_saves_what_it_shows(site: Site) -> None:
    b = await site.sign_in("bakery")
    await save(b, "bakery", "greeting", greeting="Namaste, Sweet Crumbs here!")
    await save(b, "bakery", "budget", **{"budget.monthly_usd_limit": "25"})
    await save(b, "bakery", "files", new_name="offers.md", new_text="Diwali box 499")
    page = (await b.get("/app/tenants/bakery")).text
    files = form_values(page, "files")
    files["files.input_files/menu.md"] += "\nPlum cake - 650\r\n"
    files["delete.input_files/custom_cakes.md"] = "1"
    got = await b.post("/app/tenants/bakery/save", files)
    assert got.status_code == 303
    tenant = site.tenants.get("bakery")
    assert tenant.greeting == "Namaste, Sweet Crumbs here!"
    assert tenant.budget_limit_usd == 25.0
    stored = await load_version(site.db, "bakery")
    assert stored is not None
    assert stored.files["input_files/offers.md"] == "Diwali box 499"
    assert stored.files["input_files/menu.md"].endswith("Plum cake - 650\n")  # no CR kept
    assert "input_files/custom_cakes.md" not in stored.files
    notes = [v.note for v in await list_versions(site.db, "bakery")]
    assert notes[0] == "-input_files/custom_cakes.md; input_files/menu.md"
    assert notes[2] == "tenant.toml: budget"
    # the same form posted again changes nothing: no version
    again = await b.post("/app/tenants/bakery/save", form_values(page, "business"))
    assert again.status_code == 303 and "unchanged" in again.headers["location"]
    assert await in_force(site, "bakery") == 5


# --- bad edits --------------------------------------------------------------------------------


async def test_a_bad_field_is_shown_beside_it_and_nothing_is_saved(site: Site) -> None:
    b = await site.sign_in("bakery")
    status, page = await save(
        b, "bakery", "business", **{"business.owner_phone": "call me", "business.timezone": "Mars"}
    )
    assert status == 422 and 'data-testid="save-refused"' in page
    assert 'data-testid="error-business.owner_phone"' in page
    assert 'data-testid="error-business.timezone"' in page
    assert form_values(page, "business")["business.owner_phone"] == "call me"  # kept to fix
    assert await in_force(site, "bakery") == 1
    status, page = await save(b, "bakery", "budget", **{"budget.monthly_usd_warn": "lots"})
    assert status == 422, page
    assert "error-budget.monthly_usd_warn" in page, re.findall(r"field-error.*", page)


async def test_a_broken_table_is_named_in_its_own_box(site: Site) -> None:
    b = await site.sign_in("bakery")
    page = (await b.get("/app/tenants/bakery")).text
    rules = form_values(page, "rules")["rules"]
    broken = rules.replace('template = "owner_complaint"', 'template = "no_such_template"')
    status, page = await save(b, "bakery", "rules", rules=broken)
    assert status == 422
    found = re.search(r'data-testid="error-rules">([^<]*)<', page)
    assert found and "no_such_template" in html.unescape(found.group(1))
    assert found.group(1).startswith("line ")  # the line inside that box
    assert "no_such_template" in form_values(page, "rules")["rules"]
    status, page = await save(b, "bakery", "other", other="[exotel")
    assert status == 422 and 'data-testid="error-other"' in page
    status, page = await save(b, "bakery", "files", new_name="../escape.md", new_text="x")
    assert status == 422 and 'data-testid="error-files.new_name"' in page
    status, page = await save(b, "bakery", "prompts", **{"prompts.prompts/assistant.txt": " "})
    assert status == 422 and 'data-testid="error-prompts.prompts/assistant.txt"' in page
    assert await in_force(site, "bakery") == 1


async def test_two_saves_from_the_same_version_the_second_is_told(site: Site) -> None:
    owner, admin = await site.sign_in("bakery"), await site.sign_in("admin")
    mine = form_values((await owner.get("/app/tenants/bakery")).text, "business")
    theirs = form_values((await admin.get("/app/tenants/bakery")).text, "business")
    first = await admin.post(
        "/app/tenants/bakery/save", theirs | {"business.name": "Crumbs by the Admin"}
    )
    assert first.status_code == 303
    late = await owner.post("/app/tenants/bakery/save", mine | {"business.name": "Owner's Crumbs"})
    assert late.status_code == 409 and 'data-testid="conflict"' in late.text
    assert 'data-testid="conflict-reload"' in late.text
    assert form_values(late.text, "business")["business.name"] == "Owner's Crumbs"  # not lost
    assert site.tenants.get("bakery").name == "Crumbs by the Admin"  # nor overwritten


async def test_forms_need_the_sessions_csrf_token(site: Site) -> None:
    b = await site.sign_in("bakery")
    data = form_values((await b.get("/app/tenants/bakery")).text, "business")
    for token in ("", "x" * 40):
        got = await b.post("/app/tenants/bakery/save", data | {"csrf": token})
        assert got.status_code == 403
    assert (await b.post("/app/tenants/bakery/versions/1/restore", {})).status_code == 403
    huge = data | {"csrf": csrf_of((await b.get("/app/tenants/bakery")).text), "x": "y" * 2**20}
    too_big = await b.post("/app/tenants/bakery/save", huge)
    assert too_big.status_code == 413 and "too much text" in too_big.text
    assert (await b.post("/app/tenants/bakery/test-call", {"lines": "hi"})).status_code == 403
    assert await in_force(site, "bakery") == 1


async def test_an_owner_reaches_only_its_own_tenant(site: Site) -> None:
    b = await site.sign_in("bakery")
    csrf = csrf_of((await b.get("/app/tenants/bakery")).text)
    for path in ("/app/tenants/saloon", "/app/tenants/saloon/versions",
                 "/app/tenants/saloon/test-call", "/app/tenants/..%2Fsaloon"):  # fmt: skip
        got = await b.get(path)
        assert got.status_code == 404 and "Glow" not in got.text, path
    posts = {
        "/app/tenants/saloon/save": {"area": "business", "base_version": "1"},
        "/app/tenants/saloon/versions/1/restore": {},
        "/app/tenants/saloon/active": {"active": "0"},
        "/app/tenants/saloon/test-call": {"lines": "hello"},
    }
    for path, data in posts.items():
        got = await b.post(path, data | {"csrf": csrf})
        assert got.status_code == 404, path
    assert (await b.post("/app/tenants/bakery/active", {"csrf": csrf})).status_code == 403
    assert (await b.get("/app/new-tenant")).status_code == 403
    draft = await b.post(
        "/app/new-tenant/draft", {"csrf": csrf, "tenant_id": "x", "description": "y"}
    )
    assert draft.status_code == 403
    assert await in_force(site, "saloon") == 1
    anonymous = Browser(site.url)
    site.browsers.append(anonymous)
    assert (await anonymous.get("/app/tenants/bakery")).status_code == 303  # to sign in


async def test_hostile_text_is_escaped_on_every_settings_page(site: Site) -> None:
    b = await site.sign_in("bakery")
    page = (await b.get("/app/tenants/bakery")).text
    prompt = form_values(page, "prompts")["prompts.prompts/assistant.txt"]
    status, _ = await save(
        b, "bakery", "prompts", **{"prompts.prompts/assistant.txt": prompt + "\n" + HOSTILE}
    )
    assert status == 303
    await save(b, "bakery", "business", **{"business.name": HOSTILE[:60]})
    await save(b, "bakery", "files", new_name="<img src=x onerror=alert(3)>.md", new_text=HOSTILE)
    admin = await site.sign_in("admin")
    for who, path in ((b, "/app/tenants/bakery"), (b, "/app/tenants/bakery/versions"),
                      (admin, "/app/tenants"), (admin, "/app/")):  # fmt: skip
        got = (await who.get(path)).text
        assert "<script>alert(1)" not in got and "<img src=x" not in got, path
    draft = await admin.post(
        "/app/new-tenant/draft",
        {"csrf": csrf_of((await admin.get("/app/new-tenant")).text), "tenant_id": "evil",
         "description": f"{HOSTILE}\nCake - 500\nOpen 9 am to 9 pm"},
    )  # fmt: skip
    assert draft.status_code == 200 and "<script>alert(1)" not in draft.text
    assert "&lt;script&gt;" in draft.text
    page = (await b.get("/app/tenants/bakery")).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    test = await b.post("/app/tenants/bakery/test-call", {"csrf": csrf_of(page), "lines": HOSTILE})
    assert test.status_code == 200 and "<script>alert(1)" not in test.text
    assert "&lt;script&gt;" in test.text


async def test_call_types_and_templates_are_edited_as_rows(site: Site) -> None:
    b = await site.sign_in("bakery")
    page = (await b.get("/app/tenants/bakery")).text
    rows = form_values(page, "call_types")
    assert rows["ct.0.name"] == "order" and rows["ct.0.f.0.name"] == "name"
    assert rows["ct.4.name"] == ""  # the blank call type
    status, page = await save(
        b, "bakery", "call_types",
        **{"ct.0.f.8.name": "candles", "ct.0.f.8.type": "integer", "ct.0.f.8.required": "1",
           "ct.0.f.8.description": "How many candles",
           "ct.4.name": "catering", "ct.4.description": "Bulk orders for events",
           "ct.4.f.0.name": "guests", "ct.4.f.0.type": "integer"},
    )  # fmt: skip
    assert status == 303, page[:300]
    tenant = site.tenants.get("bakery")
    order = next(ct for ct in tenant.call_types if ct.name == "order")
    candles = next(f for f in order.fields if f.name == "candles")
    assert candles.type == "integer" and candles.required
    assert "catering" in [ct.name for ct in tenant.call_types]
    stored = await load_version(site.db, "bakery")
    assert stored is not None and "# [exotel]" in stored.files["tenant.toml"]  # comments kept
    notes = [v.note for v in await list_versions(site.db, "bakery")]
    assert notes[0] == "tenant.toml: call_types.catering, call_types.order"

    # a kind no field has, posted by hand: told on that row
    status, page = await save(b, "bakery", "call_types", **{"ct.1.f.0.type": "colour"})
    assert status == 422 and 'data-testid="error-ct.1.f.0"' in page
    # a row without its name
    status, page = await save(b, "bakery", "call_types", **{"ct.5.f.0.name": "x"})
    assert status == 422 and 'data-testid="error-ct.5.name"' in page

    page = (await b.get("/app/tenants/bakery")).text
    tpl = form_values(page, "templates")
    assert tpl["tpl.0.name"] == "order_confirmation" and tpl["wa.integrated_number"]
    status, page = await save(
        b, "bakery", "templates",
        **{"tpl.0.text": "Hi {{1}}, your order of {{2}} for {{3}} ({{4}}) is noted. {{5}}",
           "tpl.5.name": "", "tpl.5.text": "Orphan {{1}}"},
    )  # fmt: skip
    assert status == 422 and 'data-testid="error-tpl.5.name"' in page
    status, page = await save(
        b,
        "bakery",
        "templates",
        **{"tpl.0.text": "Hi {{1}}, your order of {{2}} for {{3}} ({{4}}) is noted. {{5}}"},
    )
    assert status == 303
    [confirm] = [t for t in site.tenants.get("bakery").templates if t.name == "order_confirmation"]
    assert "is noted" in confirm.text
    status, page = await save(b, "bakery", "templates", **{"tpl.1.text": "Only {{1}}"})
    assert status == 422  # the rules give that template five values
    assert re.search(r'data-testid="error-(tpl\.1[.\w]*|rules)"', page)


# --- versions and restore -------------------------------------------------------------------


async def test_one_click_restores_a_version(site: Site) -> None:
    b = await site.sign_in("bakery")
    await save(b, "bakery", "business", **{"business.name": "Crumbs Two"})
    page = (await b.get("/app/tenants/bakery/versions")).text
    assert 'data-testid="restore-1"' in page and 'data-testid="restore-2"' not in page
    got = await b.post("/app/tenants/bakery/versions/1/restore", {"csrf": csrf_of(page)})
    assert got.status_code == 303
    page = (await b.get(got.headers["location"])).text
    assert "That version is in force again" in page
    assert site.tenants.get("bakery").name == NAME
    assert (await list_versions(site.db, "bakery"))[0].note == "restored version 1"
    for version in ("99", "0", "9" * 30):
        missing = await b.post(
            f"/app/tenants/bakery/versions/{version}/restore", {"csrf": csrf_of(page)}
        )
        assert missing.status_code == 404, version
    form = form_values((await b.get("/app/tenants/bakery")).text, "business")
    for base in ("", "x", "-1", "9" * 30):
        bad = await b.post("/app/tenants/bakery/save", form | {"base_version": base})
        assert bad.status_code == 400, base
    for area in ("", "nope", "../x"):
        bad = await b.post("/app/tenants/bakery/save", form | {"area": area})
        assert bad.status_code == 400, area


# --- deactivating ---------------------------------------------------------------------------


async def test_an_admin_deactivates_and_a_call_in_progress_keeps_its_version(site: Site) -> None:
    answering = site.tenants.get("bakery")  # a call that started before
    admin = await site.sign_in("admin")
    listing = (await admin.get("/app/tenants")).text
    got = await admin.post(
        "/app/tenants/bakery/active", {"csrf": csrf_of(listing), "active": "0", "back": "list"}
    )
    assert got.status_code == 303 and got.headers["location"].startswith("/app/tenants?")
    with pytest.raises(InactiveTenant):
        site.tenants.get("bakery")  # a new call is not answered
    assert answering.active and answering.version == 1  # the call in progress is unaffected
    assert (await site.tenants.at_version("bakery", 1)).active
    listing = (await admin.get("/app/tenants")).text
    assert 'data-testid="inactive"' in listing
    await admin.post("/app/tenants/bakery/active", {"csrf": csrf_of(listing), "active": "1"})
    assert site.tenants.get("bakery").active
    notes = [v.note for v in await list_versions(site.db, "bakery")]
    assert notes[:2] == ["activated", "deactivated"]
    versions = (await admin.get("/app/tenants/bakery/versions")).text
    assert "Operator · operator" in versions  # the admin key's name


# --- the test call --------------------------------------------------------------------------


async def test_a_test_call_answers_with_the_edited_version(site: Site) -> None:
    b = await site.sign_in("bakery")
    await save(b, "bakery", "greeting", greeting="Hello from the edited bakery!")
    page = (await b.get("/app/tenants/bakery/test-call")).text
    got = await b.post(
        "/app/tenants/bakery/test-call", {"csrf": csrf_of(page), "lines": ORDER_LINES}
    )
    assert got.status_code == 200, got.text[:500]
    turns = re.findall(
        r'data-speaker="(\w+)"><span class="speaker">[^<]*</span> ([^<]*)<', got.text
    )
    assert turns[0] == ("agent", "Hello from the edited bakery!")
    assert next(t for t in turns if t[0] == "caller")[1].startswith("Hi, I want to order")
    assert len([t for t in turns if t[0] == "agent"]) >= 2
    call_type = re.search(r'data-testid="test-call-type">([^<]*)<', got.text)
    assert call_type and call_type.group(1) == "order"
    assert "Version 2" in got.text


@pytest.mark.parametrize(
    "lines", ["", "  \n \n", "x" * 301, "\n".join(f"line {i}" for i in range(21))]
)
async def test_bad_test_call_lines_are_refused(site: Site, lines: str) -> None:
    b = await site.sign_in("bakery")
    page = (await b.get("/app/tenants/bakery/test-call")).text
    got = await b.post("/app/tenants/bakery/test-call", {"csrf": csrf_of(page), "lines": lines})
    assert got.status_code == 400 and 'data-testid="test-error"' in got.text
    assert 'data-testid="test-result"' not in got.text


async def test_test_calls_are_rate_limited_per_person(site: Site) -> None:
    b, again = await site.sign_in("bakery"), await site.sign_in("bakery")
    csrf = csrf_of((await b.get("/app/tenants/bakery/test-call")).text)
    for _ in range(3):
        ok = await b.post("/app/tenants/bakery/test-call", {"csrf": csrf, "lines": "hello"})
        assert ok.status_code == 200
    late = await b.post("/app/tenants/bakery/test-call", {"csrf": csrf, "lines": "hello"})
    assert late.status_code == 429 and "Too many test calls" in late.text
    assert 'data-testid="test-result"' not in late.text
    # signing in again is the same person (the same key)
    csrf2 = csrf_of((await again.get("/app/tenants/bakery/test-call")).text)
    same = await again.post("/app/tenants/bakery/test-call", {"csrf": csrf2, "lines": "hello"})
    assert same.status_code == 429
    other = await site.sign_in("saloon")
    csrf3 = csrf_of((await other.get("/app/tenants/saloon/test-call")).text)
    theirs = await other.post("/app/tenants/saloon/test-call", {"csrf": csrf3, "lines": "hello"})
    assert theirs.status_code == 200  # another person has an allowance of their own


async def test_a_test_call_against_an_earlier_version(site: Site) -> None:
    b = await site.sign_in("bakery")
    await save(b, "bakery", "greeting", greeting="Hello from version two!")
    versions = (await b.get("/app/tenants/bakery/versions")).text
    assert 'data-testid="test-version-1"' in versions
    page = (await b.get("/app/tenants/bakery/test-call?version=1")).text
    assert 'name="version" value="1"' in page
    got = await b.post(
        "/app/tenants/bakery/test-call", {"csrf": csrf_of(page), "lines": "hello", "version": "1"}
    )
    assert got.status_code == 200 and "Hello from version two!" not in got.text
    assert "Version 1" in got.text
    now = await b.post("/app/tenants/bakery/test-call", {"csrf": csrf_of(page), "lines": "hello"})
    assert "Hello from version two!" in now.text
    gone = await b.post(
        "/app/tenants/bakery/test-call", {"csrf": csrf_of(page), "lines": "hi", "version": "9"}
    )
    assert gone.status_code == 404


# --- drafting a new tenant ------------------------------------------------------------------

DESCRIPTION = """Chai Point Tea Stall, Indiranagar
Masala chai - 20
Ginger chai - 25
Samosa - 15
Open 7 am to 10 pm, closed on Mondays
Address: 12, 100 Feet Road, Indiranagar, Bengaluru 560038
Owner WhatsApp: +919812345678
Callers usually ask for bulk tea orders for offices.
"""


def review_files(page: str) -> dict[str, str]:
    return {
        html.unescape(m.group(1)): html.unescape(m.group(2))
        for m in re.finditer(r'<textarea name="file:([^"]+)"[^>]*>(.*?)</textarea>', page, re.S)
    }


async def test_a_draft_is_reviewed_and_saved_only_when_accepted(site: Site) -> None:
    admin = await site.sign_in("admin")
    page = (await admin.get("/app/new-tenant")).text
    got = await admin.post(
        "/app/new-tenant/draft",
        {"csrf": csrf_of(page), "tenant_id": "chai", "description": DESCRIPTION},
    )
    assert got.status_code == 200 and 'data-testid="draft-valid"' in got.text
    files = review_files(got.text)
    assert "tenant.toml" in files and "Chai Point" in files["tenant.toml"]
    assert any("Masala chai" in text for text in files.values())
    assert await load_version(site.db, "chai") is None  # nothing saved yet
    data = {f"file:{path}": text for path, text in files.items()}
    accepted = await admin.post(
        "/app/new-tenant/accept", data | {"csrf": csrf_of(got.text), "tenant_id": "chai"}
    )
    assert accepted.status_code == 303 and accepted.headers["location"].startswith(
        "/app/tenants/chai"
    )
    assert site.tenants.get("chai").name.startswith("Chai Point")
    history = await list_versions(site.db, "chai")
    assert [(v.version, v.note) for v in history] == [(1, "drafted from a description")]
    again = await admin.post(
        "/app/new-tenant/accept", data | {"csrf": csrf_of(got.text), "tenant_id": "chai"}
    )
    assert again.status_code == 409 and 'data-testid="conflict"' in again.text


@pytest.mark.parametrize(
    ("tenant_id", "description", "where"),
    [
        ("Bad Id!", DESCRIPTION, "tenant_id"),
        ("bakery", DESCRIPTION, "tenant_id"),
        ("chai", "", "description"),
        ("chai", "x" * (64 * 1024 + 1), "description"),
    ],
)
async def test_a_bad_draft_request_is_told_beside_its_field(
    site: Site, tenant_id: str, description: str, where: str
) -> None:
    admin = await site.sign_in("admin")
    csrf = csrf_of((await admin.get("/app/new-tenant")).text)
    got = await admin.post(
        "/app/new-tenant/draft", {"csrf": csrf, "tenant_id": tenant_id, "description": description}
    )
    assert got.status_code == 400 and f'data-testid="error-{where}"' in got.text


async def test_a_description_without_prices_or_hours_still_drafts_for_review(site: Site) -> None:
    admin = await site.sign_in("admin")
    csrf = csrf_of((await admin.get("/app/new-tenant")).text)
    got = await admin.post(
        "/app/new-tenant/draft",
        {"csrf": csrf, "tenant_id": "tailor", "description": "Raj Tailors, we stitch suits."},
    )
    assert got.status_code == 200 and 'data-testid="draft-valid"' in got.text
    assert "TODO" in "".join(review_files(got.text).values())  # what is missing is marked


async def test_an_accepted_draft_that_was_broken_in_review_is_not_saved(site: Site) -> None:
    admin = await site.sign_in("admin")
    csrf = csrf_of((await admin.get("/app/new-tenant")).text)
    got = await admin.post(
        "/app/new-tenant/draft", {"csrf": csrf, "tenant_id": "chai", "description": DESCRIPTION}
    )
    files = review_files(got.text)
    files["tenant.toml"] = files["tenant.toml"].replace("owner_phone =", "owner_phone = 5 #")
    data = {f"file:{p}": t for p, t in files.items()}
    bad = await admin.post("/app/new-tenant/accept", data | {"csrf": csrf, "tenant_id": "chai"})
    assert bad.status_code == 422 and 'data-testid="error-file:tenant.toml"' in bad.text
    assert await load_version(site.db, "chai") is None


async def test_the_served_app_edits_tenants_and_on_folders_says_where(
    db: Database, tmp_path: Path
) -> None:
    """The server as `receptionist serve` builds it: its settings pages on tenants in the
    database, and a clear page where tenants are read from folders."""
    for source in ("database", "folders"):
        async for server in _server(db, tmp_path / source, source):
            b = Browser(server.url)
            try:
                form = await b.get("/app/login")
                token = csrf_of(form.text)
                await b.post("/app/login", {"key": server.keys["bakery"], "csrf": token})
                page = await b.get("/app/tenants/bakery")
                if source == "database":
                    assert page.status_code == 200 and 'data-testid="form-business"' in page.text
                else:
                    assert page.status_code == 409
                    assert "TENANTS_SOURCE=database" in page.text
            finally:
                await b.aclose()


async def test_with_a_gemini_key_the_draft_is_gemini_s(db: Database, tmp_path: Path) -> None:
    """The server's drafter (onboarding.settings_drafter) through the real SDK against the REST
    double: Gemini's draft under review; a failed answer falls back to the template, and says so."""
    from tests.integration.test_tenants_new import GEMINI_ANSWER

    async with FakeGeminiRest(api_key="test-key") as fake:
        settings = load_settings(
            database_url=db.url, gemini_api_key="test-key", gemini_analysis_base_url=fake.base_url
        )
        async with settings_site(db, tmp_path, settings_drafter(settings)) as site:
            admin = await site.sign_in("admin")
            csrf = csrf_of((await admin.get("/app/new-tenant")).text)
            fake.script(json.dumps(GEMINI_ANSWER))
            got = await admin.post(
                "/app/new-tenant/draft",
                {"csrf": csrf, "tenant_id": "crumbs", "description": DESCRIPTION},
            )
            assert got.status_code == 200 and 'data-source="gemini"' in got.text
            assert GEMINI_ANSWER["greeting"] in html.unescape(got.text)
            assert len(fake.requests) == 1 and fake.requests[0].response_schema is not None
            fake.script(Fault(503))
            again = await admin.post(
                "/app/new-tenant/draft",
                {"csrf": csrf, "tenant_id": "crumbs", "description": DESCRIPTION},
            )
            assert again.status_code == 200 and 'data-source="template"' in again.text
            assert "used the template" in again.text
            assert await load_version(site.db, "crumbs") is None  # neither was saved


async def test_deactivated_from_the_dashboard_during_a_call(db: Database, tmp_path: Path) -> None:
    """The served app: an admin deactivates the bakery while a call is mid-reply; that call ends
    with the version it started with, the next call is refused."""
    from receptionist.sim.caller import CallerScript, CallOptions, place_call
    from receptionist.sim.gemini_live import CallScript, FakeGeminiLive, Hold, ScriptedTurn
    from receptionist.store.calls import get_call
    from tests.integration.bridge_harness import running_bridge

    hold = Hold(after_ms=100)
    script = CallScript(
        turns=[ScriptedTurn(heard="Are you open?", reply="Yes, till nine.", hold=hold)]
    )
    admin_key = (await create_key(db, tenant=None))[1]
    async with (
        FakeGeminiLive(script=script) as fake,
        running_bridge(db, tmp_path, fake, tenants_source="database") as bridge,
    ):
        call = asyncio.create_task(
            place_call(
                CallOptions(url=bridge.url("bakery"), realtime=False),
                CallerScript(utterances=["Are you open?"]),
            )
        )
        admin = Browser(f"http://127.0.0.1:{bridge.port}")
        try:
            await hold.wait_reached()  # the agent is mid-reply
            token = csrf_of((await admin.get("/app/login")).text)
            await admin.post("/app/login", {"key": admin_key, "csrf": token})
            page = (await admin.get("/app/tenants/bakery")).text
            off = await admin.post(
                "/app/tenants/bakery/active", {"csrf": csrf_of(page), "active": "0"}
            )
            assert off.status_code == 303 and "m=deactivated" in off.headers["location"]
            hold.release()
            first = await call
            refused = await place_call(
                CallOptions(url=bridge.url("bakery"), realtime=False),
                CallerScript(utterances=["Hello?"]),
            )
        finally:
            hold.release()
            await admin.aclose()
    row = await get_call(db, first.call_sid)
    assert row is not None and row["status"] == "completed" and row["tenant_version"] == 1
    assert any(t["text"] == "Yes, till nine." for t in row["transcript"] if t["speaker"] == "agent")
    assert refused.close_code == 1008  # inactive: refused at the start
    assert (await list_versions(db, "bakery"))[0].note == "deactivated"


async def test_the_settings_pages_in_hindi(site: Site) -> None:
    b = await site.sign_in("bakery")
    page = (await b.get("/app/tenants/bakery")).text
    switched = await b.post(
        "/app/language", {"csrf": csrf_of(page), "lang": "hi", "next": "/app/tenants/bakery"}
    )
    assert switched.status_code == 303
    for path, words in (
        ("/app/tenants/bakery", ("व्यवसाय का विवरण", "सहेजें", "कॉल के प्रकार")),
        ("/app/tenants/bakery/versions", ("संस्करण", "लागू")),
        ("/app/tenants/bakery/test-call", ("परीक्षण कॉल करें",)),
    ):
        got = (await b.get(path)).text
        assert '<html lang="hi">' in got
        for word in words:
            assert word in got, (path, word)
    status, page = await save(b, "bakery", "business", **{"business.name": "Crumbs"})
    assert status == 303 and "नए संस्करण के रूप में सहेजा गया" in page
