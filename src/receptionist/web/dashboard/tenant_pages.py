"""The tenant's settings in the dashboard: a form per area, the versions and their restore, an
admin's switch to deactivate a tenant, a test call, and a new tenant drafted from a description.

Every save goes through web/tenant_edit.py (checked like `tenants validate`, a new version with
its author and what changed, a stale save refused); web/tenant_form.py turns the files into the
forms and the loader's problems into messages beside their fields. An owner reaches its own
tenant only (404 for any other, as the API answers); an admin any, and only an admin creates
or deactivates one.
"""

from __future__ import annotations

import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from receptionist.store.api_keys import KeyOwner, list_keys
from receptionist.store.tenant_versions import load_version
from receptionist.stored_tenants import StoredTenants
from receptionist.tenants.bundle import (
    ASSISTANT_PROMPT,
    CONFIG_FILE,
    INPUT_DIR,
    BadBundlePath,
    check_path,
)
from receptionist.tenants.draft import MAX_DESCRIPTION_BYTES, DraftError
from receptionist.tenants.greeting import find_marked_greeting
from receptionist.tenants.loading import is_valid_tenant_id
from receptionist.tenants.model import FIELD_TYPES, Tenant
from receptionist.tenants.repository import TenantError
from receptionist.web import tenant_edit
from receptionist.web.dashboard.app import Dashboard, Viewer
from receptionist.web.dashboard.guard import BadForm, read_form, same_token
from receptionist.web.dashboard.i18n import N_
from receptionist.web.deps import WebError
from receptionist.web.models import TenantEdit
from receptionist.web.scope import Scope
from receptionist.web.tenant_form import (
    AREAS,
    BUDGET_FIELDS,
    BUSINESS_FIELDS,
    WHATSAPP_KEYS,
    ConfigParts,
    FieldErrors,
    call_type_rows,
    call_types_from_form,
    call_types_toml,
    change_summary,
    join_config,
    map_problems,
    scalar_text,
    set_active,
    set_greeting,
    set_scalar,
    split_config,
    templates_area,
    templates_from_form,
    templates_toml,
)
from receptionist.web.test_call import BadLines, caller_lines, run_test_call

MAX_SETTINGS_BYTES = 1024 * 1024  # as the API's tenant edit (web/api.py MAX_EDIT_BYTES)
MAX_SETTINGS_FIELDS = 2000  # the call types form has a few inputs per field of every type

# What the owner reads when a test call or a draft cannot go ahead (by code).
FORM_TEXT = {
    "too_many_tests": N_("Too many test calls. Wait a minute and try again."),
    "bad_lines": N_("Write one to 20 lines the caller says, each at most 300 characters."),
    "tenant_broken": N_("The settings in force have problems: fix them first."),
    "test_timeout": N_("The test call took too long and was stopped."),
    "bad_id": N_(
        "Use 1 to 63 lowercase letters, digits, '-' or '_', starting with a letter or digit."
    ),
    "id_taken": N_("A business with this id already exists."),
    "description_long": N_("The description is too long (at most 64 KB)."),
    "description_empty": N_("Describe the business: what it sells with prices, hours, address."),
    "description_bad": N_("This description could not be read. Write it as plain text."),
}
AUTHOR_ROLE = {"operator": N_("Operator"), "owner": N_("Owner")}


def _dash(request: Request) -> Dashboard:
    dash: Dashboard = request.app.state.dash
    return dash


def _prefix(request: Request) -> str:
    return str(request.scope.get("root_path", ""))


def _scope(viewer: Viewer) -> Scope:
    """The viewer's whole reach (an admin's chosen tenant of the other pages does not narrow
    what an admin may edit)."""
    return Scope.of(KeyOwner(viewer.session.key_id, viewer.session.tenant), None)


def _author(viewer: Viewer) -> str:
    return f"key:{viewer.session.key_id}"  # as the API writes it: one history for both


def _tenant_id(request: Request, viewer: Viewer) -> str:
    tenant_id = str(request.path_params["tenant_id"])
    tenant_edit.reach(_scope(viewer), tenant_id)  # another tenant's page: 404, read nothing
    return tenant_id


def _admin(viewer: Viewer) -> None:
    if not viewer.is_admin:
        raise WebError(403, "admin_only", "only an operator may do this")


async def _posted(request: Request, viewer: Viewer) -> dict[str, str]:
    try:
        form = await read_form(
            request, max_bytes=MAX_SETTINGS_BYTES, max_fields=MAX_SETTINGS_FIELDS
        )
    except BadForm as exc:
        if "too large" in str(exc):
            raise WebError(413, "too_large", "the form is too large") from None
        raise WebError(403, "forbidden", "missing CSRF token") from None
    if not same_token(form.get("csrf"), viewer.session.csrf_token):
        raise WebError(403, "forbidden", "missing or wrong CSRF token")
    return form


def _text(form: dict[str, str], name: str) -> str:
    """A box's text as the files keep it (browsers send CRLF line ends)."""
    return form.get(name, "").replace("\r\n", "\n").replace("\r", "\n")


def _redirect(request: Request, path: str, notice: str, anchor: str = "") -> Response:
    query = urlencode({"m": notice})
    return RedirectResponse(f"{_prefix(request)}{path}?{query}{anchor}", status_code=303)


# --- the settings page ------------------------------------------------------------------------


@dataclass
class Editor:
    """What the settings page shows: the files of a version (or of an edit not saved)."""

    tenant_id: str
    version: int | None
    files: dict[str, str]
    parts: ConfigParts
    errors: FieldErrors = field(default_factory=FieldErrors)
    conflict: bool = False
    area: str | None = None  # the form the errors or the conflict concern
    places: dict[tuple[str, ...], str] = field(default_factory=dict)  # key path -> form place
    row_areas: frozenset[str] = frozenset()  # areas posted as rows of fields, not as TOML

    @classmethod
    def of(cls, tenant_id: str, version: int | None, files: dict[str, str]) -> Editor:
        return cls(tenant_id, version, files, split_config(files.get(CONFIG_FILE, "")))

    def context(self) -> dict[str, Any]:
        try:
            data = tomllib.loads(join_config(self.parts.areas))
        except tomllib.TOMLDecodeError:
            data = {}
        found = data.get("budget")
        budget: dict[str, Any] = found if isinstance(found, dict) else {}
        prompt = self.files.get(ASSISTANT_PROMPT, "")
        return {
            "ed": self,
            "business": {k: scalar_text(data, k) for k in BUSINESS_FIELDS},
            "required": BUSINESS_FIELDS,
            "budget_values": {k: scalar_text(budget, k) for k in BUDGET_FIELDS},
            "active": data.get("active", True) is not False,
            "greeting": find_marked_greeting(prompt) or "",
            "prompts": sorted(p for p in self.files if p.startswith("prompts/")),
            "inputs": sorted(p for p in self.files if p.startswith(INPUT_DIR + "/")),
            "areas": self.parts.areas,
            "whole": self.parts.whole,
            "ct_rows": call_type_rows(self.parts.areas["call_types"]),
            "tpl": templates_area(self.parts.areas["templates"]),
            "field_types": FIELD_TYPES,
            "whatsapp_keys": WHATSAPP_KEYS,
            "errors": self.errors,
        }


async def tenants_list(request: Request, viewer: Viewer) -> Response:
    """An owner goes straight to its settings; an admin sees every tenant, active or not."""
    dash = _dash(request)
    if not viewer.is_admin:
        return RedirectResponse(
            f"{_prefix(request)}/tenants/{viewer.session.tenant}", status_code=303
        )
    rows: list[tuple[str, str, bool | None, int | None]] = []
    for tenant_id in dash.deps.tenants.ids():
        try:
            tenant = dash.deps.tenants.get_any(tenant_id)
            rows.append((tenant_id, tenant.name, tenant.active, tenant.version))
        except TenantError:
            rows.append((tenant_id, tenant_id, None, None))
    return dash.render(request, "tenants.html", nav="settings", rows=rows, notice=_notice(request))


async def settings(request: Request, viewer: Viewer) -> Response:
    dash = _dash(request)
    tenant_id = _tenant_id(request, viewer)
    got = await tenant_edit.files_of(_scope(viewer), dash.deps, tenant_id)
    editor = Editor.of(tenant_id, got.version, got.files)
    return _settings_page(request, editor)


def _settings_page(request: Request, editor: Editor, status: int = 200) -> Response:
    return _dash(request).render(
        request,
        "tenant.html",
        status=status,
        nav="settings",
        notice=_notice(request),
        **editor.context(),
    )


def _apply(area: str, form: dict[str, str], base: dict[str, str], editor: Editor) -> None:
    """The base version's files with this area's form applied (into `editor`)."""
    files = dict(base)
    areas = dict(editor.parts.areas)
    if area == "business":
        text = areas["preamble"]
        for key, required in BUSINESS_FIELDS.items():
            raw = form.get(f"business.{key}", "").strip()
            text = set_scalar(text, (), key, raw if raw or required else None)
        areas["preamble"] = text
    elif area == "budget":
        text = areas["budget"]
        for key in BUDGET_FIELDS:
            raw = form.get(f"budget.{key}", "").strip()
            text = set_scalar(text, ("budget",), key, raw or None)
        areas["budget"] = "" if text.strip() == "[budget]" else text
    elif area == "greeting":
        files[ASSISTANT_PROMPT] = set_greeting(
            files.get(ASSISTANT_PROMPT, ""), form.get("greeting", "")[:300]
        )
    elif area == "prompts":
        for path in [p for p in files if p.startswith("prompts/")]:
            if f"prompts.{path}" in form:
                files[path] = _text(form, f"prompts.{path}")
    elif area == "files":
        for path in [p for p in files if p.startswith(INPUT_DIR + "/")]:
            if form.get(f"delete.{path}"):
                del files[path]
            elif f"files.{path}" in form:
                files[path] = _text(form, f"files.{path}")
        name = form.get("new_name", "").strip()
        if name:
            path = f"{INPUT_DIR}/{name}"
            try:
                check_path(path)
            except BadBundlePath as exc:
                editor.errors.add("files.new_name", str(exc))
            else:
                files[path] = _text(form, "new_text")
    elif area == "call_types" and form.get("rows"):
        rows, editor.places = call_types_from_form(form, editor.errors)
        areas[area] = _with_lead(areas[area], call_types_toml(rows))
        editor.row_areas = frozenset({area})
    elif area == "templates" and form.get("rows"):
        found, editor.places = templates_from_form(form, editor.errors)
        areas[area] = _with_lead(areas[area], templates_toml(found))
        editor.row_areas = frozenset({area})
    elif area == "config":
        areas = {**{a: "" for a in areas}, "preamble": _text(form, "config")}
    else:  # a TOML area: call types, templates, rules, other
        areas[area] = _text(form, area).strip("\n")
    if area not in ("greeting", "prompts", "files"):
        files[CONFIG_FILE] = join_config(areas)
        editor.parts = ConfigParts(areas, whole=editor.parts.whole)
    editor.files = files


def _with_lead(old: str, new: str) -> str:
    """`new` after the comment lines that opened the area (kept when rows are saved)."""
    lead = []
    for line in old.split("\n"):
        if line.strip() and not line.strip().startswith("#"):
            break
        lead.append(line)
    return "\n".join([*lead, new]).strip("\n")


async def save(request: Request, viewer: Viewer) -> Response:
    dash = _dash(request)
    tenant_id = _tenant_id(request, viewer)
    form = await _posted(request, viewer)
    area = form.get("area", "")
    if area not in AREAS:
        raise WebError(400, "bad_form", "no such part of the settings")
    base_version = _asked_version(form.get("base_version", ""))
    if base_version is None:
        raise WebError(400, "bad_form", "no version")
    base = await load_version(dash.deps.db, tenant_id, base_version)
    if base is None:
        raise WebError(404, "not_found", "no such version")
    editor = Editor.of(tenant_id, base_version, base.files)
    editor.area = area
    _apply(area, form, base.files, editor)
    if editor.errors:
        return _settings_page(request, editor, 422)
    if editor.files == base.files:
        return _redirect(request, f"/tenants/{tenant_id}", "unchanged", f"#{area}")
    edit = TenantEdit(
        base_version=base_version,
        files=editor.files,
        note=change_summary(base.files, editor.files),
    )
    try:
        await tenant_edit.save(_scope(viewer), dash.deps, tenant_id, edit, author=_author(viewer))
    except WebError as exc:
        if exc.code == "version_conflict":
            editor.conflict = True  # the edit stays on the page: nothing is lost
            return _settings_page(request, editor, 409)
        if exc.code not in ("invalid_tenant", "operator_only"):
            raise
        if exc.problems:
            editor.errors = map_problems(
                exc.problems,
                editor.parts.areas,
                editor.parts.whole,
                editor.places,
                editor.row_areas,
            )
        else:
            editor.errors.add("general", exc.message)
        return _settings_page(request, editor, 422)
    return _redirect(request, f"/tenants/{tenant_id}", "saved", f"#{area}")


async def set_active_state(request: Request, viewer: Viewer) -> Response:
    """An admin deactivates (or activates again) a tenant: a new version with `active` set.
    A call already answering keeps the version it started with (stored_tenants.py)."""
    dash = _dash(request)
    tenant_id = _tenant_id(request, viewer)
    _admin(viewer)
    form = await _posted(request, viewer)
    active = form.get("active") == "1"
    current = await tenant_edit.files_of(_scope(viewer), dash.deps, tenant_id)
    files = {**current.files, CONFIG_FILE: set_active(current.files.get(CONFIG_FILE, ""), active)}
    edit = TenantEdit(
        base_version=current.version,
        files=files,
        note="activated" if active else "deactivated",
    )
    await tenant_edit.save(_scope(viewer), dash.deps, tenant_id, edit, author=_author(viewer))
    back = "/tenants" if form.get("back") == "list" else f"/tenants/{tenant_id}"
    return _redirect(request, back, "activated" if active else "deactivated")


# --- versions ---------------------------------------------------------------------------------


async def versions(request: Request, viewer: Viewer) -> Response:
    dash = _dash(request)
    tenant_id = _tenant_id(request, viewer)
    rows = await tenant_edit.versions_of(_scope(viewer), dash.deps, tenant_id)
    return dash.render(
        request,
        "tenant_versions.html",
        nav="settings",
        tenant_id=tenant_id,
        versions=rows,
        authors=await _authors(dash, {v.author for v in rows}),
        author_role=AUTHOR_ROLE,
        notice=_notice(request),
    )


async def _authors(dash: Dashboard, authors: set[str]) -> dict[str, tuple[str, str]]:
    """`key:N` -> (the key's role, its name) for the keys that saved these versions."""
    wanted = {int(a[4:]) for a in authors if a.startswith("key:") and a[4:].isdigit()}
    if not wanted:
        return {}
    out = {}
    for row in await list_keys(dash.deps.db):
        if row["id"] in wanted:
            role = "operator" if row["tenant"] is None else "owner"
            out[f"key:{row['id']}"] = (role, str(row["name"] or f"#{row['id']}"))
    return out


async def restore(request: Request, viewer: Viewer) -> Response:
    dash = _dash(request)
    tenant_id = _tenant_id(request, viewer)
    await _posted(request, viewer)
    version = _asked_version(str(request.path_params["version"]))
    if version is None:
        raise WebError(404, "not_found", "no such version")
    await tenant_edit.restore(_scope(viewer), dash.deps, tenant_id, version, author=_author(viewer))
    return _redirect(request, f"/tenants/{tenant_id}/versions", "restored")


# --- the test call ----------------------------------------------------------------------------


async def test_call(request: Request, viewer: Viewer) -> Response:
    dash = _dash(request)
    tenant_id = _tenant_id(request, viewer)
    result = None
    error = None
    lines = ""
    status = 200
    form: dict[str, str] = {}
    if request.method == "POST":
        form = await _posted(request, viewer)
        lines = _text(form, "lines")[:20_000]
        if not dash.options.test_calls.take(viewer.session.key_id):  # per key: per person
            error, status = "too_many_tests", 429
        else:
            try:
                said = caller_lines(lines)
            except BadLines:
                error, status = "bad_lines", 400
            else:
                try:
                    tenant = await _version_of(dash, tenant_id, form.get("version", ""))
                except TenantError:
                    error, status = "tenant_broken", 409
                else:
                    try:
                        result = await run_test_call(
                            tenant, said, timeout_s=dash.options.test_call_s
                        )
                    except TimeoutError:
                        error, status = "test_timeout", 504
    return dash.render(
        request,
        "test_call.html",
        status=status,
        nav="settings",
        tenant_id=tenant_id,
        version=_asked_version(request.query_params.get("version", ""))
        if request.method == "GET"
        else _asked_version(form.get("version", "")),
        lines=lines,
        result=result,
        error=FORM_TEXT.get(error or ""),
    )


def _asked_version(raw: str) -> int | None:
    raw = raw.strip()
    return int(raw) if raw.isdigit() and len(raw) <= 9 else None


async def _version_of(dash: Dashboard, tenant_id: str, raw: str) -> Tenant:
    """The tenant as the version asked for (one of the versions list), else as in force."""
    version = _asked_version(raw)
    tenants = dash.deps.tenants
    if version is None or not isinstance(tenants, StoredTenants):
        return tenants.get_any(tenant_id)
    if await load_version(dash.deps.db, tenant_id, version) is None:
        raise WebError(404, "not_found", f"no version {version}")
    return await tenants.at_version(tenant_id, version)


# --- a new tenant from a description (admin) ----------------------------------------------------

Drafter = Callable[[str, str], Awaitable[Any]]


async def new_tenant(request: Request, viewer: Viewer) -> Response:
    _admin(viewer)
    return _dash(request).render(
        request, "tenant_new.html", nav="settings", tenant_id="", description="", errors={}
    )


async def draft(request: Request, viewer: Viewer) -> Response:
    """The draft shown for review: nothing is saved until it is accepted."""
    dash = _dash(request)
    _admin(viewer)
    form = await _posted(request, viewer)
    tenant_id = form.get("tenant_id", "").strip()[:100]
    description = _text(form, "description")
    errors: dict[str, str] = {}
    if not is_valid_tenant_id(tenant_id):
        errors["tenant_id"] = "bad_id"
    elif tenant_id in dash.deps.tenants.ids() or await load_version(dash.deps.db, tenant_id):
        errors["tenant_id"] = "id_taken"
    if len(description.encode()) > MAX_DESCRIPTION_BYTES:
        errors["description"] = "description_long"
    elif not description.strip():
        errors["description"] = "description_empty"
    result = None
    if not errors:
        try:
            result = await dash.options.drafter(tenant_id, description)
        except DraftError:
            errors["description"] = "description_bad"
    if result is None:
        return dash.render(
            request,
            "tenant_new.html",
            status=400,
            nav="settings",
            tenant_id=tenant_id,
            description=description,
            errors={k: FORM_TEXT[v] for k, v in errors.items()},
        )
    return _review(
        request, tenant_id, result.bundle.as_text(), source=result.source, note=result.note
    )


def _review(
    request: Request,
    tenant_id: str,
    files: dict[str, str],
    *,
    source: str | None = None,
    note: str | None = None,
    errors: FieldErrors | None = None,
    status: int = 200,
    taken: bool = False,
) -> Response:
    return _dash(request).render(
        request,
        "tenant_review.html",
        status=status,
        nav="settings",
        tenant_id=tenant_id,
        files=sorted(files.items()),
        source=source,
        note=note,
        errors=errors or FieldErrors(),
        taken=taken,
    )


async def accept(request: Request, viewer: Viewer) -> Response:
    dash = _dash(request)
    _admin(viewer)
    form = await _posted(request, viewer)
    tenant_id = form.get("tenant_id", "").strip()
    tenant_edit.reach(_scope(viewer), tenant_id)
    files = {name[5:]: _text(form, name) for name in form if name.startswith("file:")}
    edit = TenantEdit(base_version=None, files=files, note="drafted from a description")
    try:
        await tenant_edit.save(_scope(viewer), dash.deps, tenant_id, edit, author=_author(viewer))
    except WebError as exc:
        if exc.code == "version_conflict":
            return _review(request, tenant_id, files, status=409, taken=True)
        if exc.code != "invalid_tenant":
            raise
        errors = FieldErrors()
        for p in exc.problems or [{"file": "", "message": exc.message}]:
            where = str(p.get("file") or "")
            line = p.get("line")
            text = f"line {line}: {p.get('message')}" if line else str(p.get("message"))
            errors.add(f"file:{where}" if where in files else "general", text)
        return _review(request, tenant_id, files, errors=errors, status=422)
    return _redirect(request, f"/tenants/{tenant_id}", "created")


# --- notices ----------------------------------------------------------------------------------


def _notice(request: Request) -> str | None:
    from receptionist.web.dashboard.app import NOTICE_TEXT

    return NOTICE_TEXT.get(request.query_params.get("m", ""))
