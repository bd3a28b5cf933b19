"""Checks of tenant.toml's `[digest]` table: the owner's daily WhatsApp digest (see
actions.DailyDigest and notify/digest.py)."""

from __future__ import annotations

from typing import Any

from .actions import DIGEST_SOURCES, DailyDigest, Template
from .report import Report, suggest


def check_digest(
    r: Report, config: dict[str, Any], templates: tuple[Template, ...]
) -> DailyDigest | None:
    table = r.table_value(config, "digest", ())
    if table is None:
        return None
    path = ("digest",)
    r.check_shape(path)
    before = len(r.problems)
    hour = table.get("hour")
    if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23:
        r.add_config((*path, "hour"), "digest.hour must be a whole hour from 0 to 23 (local time)")
    name = r.text_value(table, "template", path)
    template = next((t for t in templates if t.name == name), None)
    if name is not None and template is None:
        known = [t.name for t in templates]
        r.add_config(
            (*path, "template"),
            f"digest.template {name!r} is not declared in [templates]{suggest(name, known)}",
        )
    sources = table.get("variables", [])
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        r.add_config((*path, "variables"), "digest.variables must be a list of names in quotes")
        sources = []
    for source in sources:
        if source not in DIGEST_SOURCES:
            r.add_config(
                (*path, "variables"),
                f"digest.variables: unknown {source!r}{suggest(source, DIGEST_SOURCES)} "
                f"(one of {', '.join(DIGEST_SOURCES)})",
            )
    if template is not None and len(sources) != template.variable_count:
        r.add_config(
            (*path, "variables"),
            f"digest.variables has {len(sources)} name(s) but template {template.name!r} has "
            f"{template.variable_count} placeholder(s) ({{{{1}}}}..): one name per placeholder",
        )
    if len(r.problems) != before or name is None or not isinstance(hour, int):
        return None
    return DailyDigest(hour=hour, template=name, sources=tuple(sources))
