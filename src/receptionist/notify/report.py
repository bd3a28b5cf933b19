"""How a stored message reads for its owner (CLI and demo): who, which template, status, why."""

from __future__ import annotations

from typing import Any

from receptionist.notify.log_provider import mask_number


def message_line(row: dict[str, Any]) -> str:
    to = row.get("recipient_type") or "?"
    number = mask_number(row["recipient"]) if row.get("recipient") else "no number"
    urgent = " URGENT" if row.get("urgent") else ""
    head = f"#{row['id']} {row['status']:<9} {to} {number} · {row.get('template_name')}{urgent}"
    text = (row.get("details") or {}).get("text")
    lines = [head]
    if text:
        lines.append(f"    “{text}”")
    if row.get("error"):
        lines.append(f"    why: {row['error']}")
    ai = (row.get("details") or {}).get("ai")
    if ai and not ai.get("used"):
        lines.append(f"    AI text not used: {ai.get('reason')}")
    return "\n".join(lines)
