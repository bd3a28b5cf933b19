"""Checks of tenant.toml's `[recording]` table: whether calls are recorded, for how long the
recordings are kept, and the key a caller presses so that theirs is not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .report import Report

__all__ = ["DTMF_KEYS", "MAX_ANNOUNCE_CHARS", "MAX_RETENTION_DAYS", "RecordingPolicy"]

DTMF_KEYS = "0123456789*#"
MAX_RETENTION_DAYS = 3650
DEFAULT_RETENTION_DAYS = 30
MAX_ANNOUNCE_CHARS = 300


@dataclass(frozen=True, slots=True)
class RecordingPolicy:
    """The tenant records its calls (both sides, stereo) and keeps them `retention_days`.

    `opt_out_digit`: a caller who presses it is not recorded (what was written is deleted);
    `announce`: added to the end of the greeting (e.g. that the call is recorded and which key
    stops it), so the caller hears it before anything else; None: nothing is added."""

    retention_days: int = DEFAULT_RETENTION_DAYS
    opt_out_digit: str | None = None
    announce: str | None = None


def check_recording(r: Report, config: dict[str, Any]) -> RecordingPolicy | None:
    """The policy when `[recording] enabled = true`; None: calls are not recorded (default)."""
    table = r.table_value(config, "recording", ())
    if table is None:
        return None
    path = ("recording",)
    r.check_shape(path)
    before = len(r.problems)
    enabled = table.get("enabled", False)
    if not isinstance(enabled, bool):
        r.add_config((*path, "enabled"), "recording.enabled must be true or false")
    days = table.get("retention_days", DEFAULT_RETENTION_DAYS)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_RETENTION_DAYS:
        r.add_config(
            (*path, "retention_days"),
            f"recording.retention_days must be a whole number of days from 1 to "
            f"{MAX_RETENTION_DAYS}; got {days!r}",
        )
    digit = table.get("opt_out_digit")
    if digit is not None and (
        not isinstance(digit, str) or len(digit) != 1 or digit not in DTMF_KEYS
    ):
        r.add_config(
            (*path, "opt_out_digit"),
            f'recording.opt_out_digit must be one phone key in quotes (0-9, * or #), e.g. "9"; '
            f"got {digit!r}",
        )
    announce = r.text_value(table, "announce", path) if "announce" in table else None
    if announce is not None and not 1 <= len(announce) <= MAX_ANNOUNCE_CHARS:
        r.add_config(
            (*path, "announce"),
            f"recording.announce must be 1 to {MAX_ANNOUNCE_CHARS} characters",
        )
    if len(r.problems) != before or enabled is not True:
        return None
    return RecordingPolicy(
        retention_days=days,
        opt_out_digit=digit,
        announce=announce or None,
    )
