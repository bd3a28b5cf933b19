"""Every text the dashboard shows has a Hindi translation, and the catalog is read at run time."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from receptionist.web.dashboard.i18n import HERE, LOCALES, environments, load_translations

OPTIONS = {"extensions": "jinja2.ext.i18n", "trimmed": "false"}


def dashboard_msgids() -> set[str]:
    """Messages in the templates (Babel's Jinja2 extractor) and in the Python code (`N_`)."""
    found: set[str] = set()
    for method, pattern in (("jinja2", "templates/**.html"), ("python", "*.py")):
        for _file, _line, message, _comments, _ctx in extract_from_dir(
            str(HERE),
            method_map=[(pattern, method)],
            options_map={pattern: OPTIONS},
            keywords={"_": None, "gettext": None, "N_": None},
        ):
            if isinstance(message, tuple):
                found.update(m for m in message if m)
            elif message:
                found.add(message)
    return found


def catalog() -> dict[str, str]:
    with (LOCALES / "hi" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return {str(m.id): str(m.string) for m in read_po(f, locale="hi") if m.id}


def test_every_message_has_a_hindi_translation() -> None:
    wanted = dashboard_msgids()
    assert len(wanted) > 100, len(wanted)  # the extractor found the templates and the code
    hindi = catalog()
    missing = sorted(m for m in wanted if not hindi.get(m))
    assert not missing, missing
    for msgid in wanted:  # placeholders survive translation
        assert set(re.findall(r"%\(\w+\)s", msgid)) == set(re.findall(r"%\(\w+\)s", hindi[msgid]))
        assert re.search(r"[\u0900-\u097F]", hindi[msgid]) or not re.search("[a-z]", msgid), msgid


def test_no_stale_entries_in_the_catalog() -> None:
    assert not sorted(set(catalog()) - dashboard_msgids())


def test_the_catalog_is_installed_without_a_compiled_file() -> None:
    assert not list(Path(LOCALES).rglob("*.mo"))
    assert load_translations("hi").gettext("Today") == "आज"
    page = environments()["hi"].from_string("{{ _('Calls') }} {{ _('Today') }}").render()
    assert page == "कॉल आज"
