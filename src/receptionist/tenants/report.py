"""Problems found in a tenant folder, and reading tenant.toml's values with owner-friendly messages.

A :class:`Report` collects every problem (with its file and, for tenant.toml, its line) instead of
stopping at the first: a small-business owner edits these files by hand and should see all that
is wrong at once.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .toml_lines import KeyLines, dotted_key

__all__ = ["E164", "Problem", "Report", "is_env_name", "suggest", "type_name"]

E164 = re.compile(r"\+[1-9]\d{7,14}")
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a tenant folder; ``file`` is relative to the tenants root."""

    tenant_id: str
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.message}"


@dataclass
class Report:
    """The problems of one tenant folder, as they are found."""

    tenant_id: str
    config_rel: str  # tenant.toml, relative to the tenants root
    keys: KeyLines = field(default_factory=lambda: KeyLines(""))
    problems: list[Problem] = field(default_factory=list)
    # unknown and missing keys by table, from the models; reported when that table is checked
    shape: dict[tuple[str, ...], list[tuple[tuple[str, ...], str]]] = field(default_factory=dict)

    def add(self, rel: str, line: int | None, message: str) -> None:
        self.problems.append(Problem(self.tenant_id, rel, line, message))

    def add_config(self, path: tuple[str, ...], message: str) -> None:
        self.add(self.config_rel, self.keys.line(*path) if path else None, message)

    def check_shape(self, path: tuple[str, ...]) -> None:
        """Report the unknown and missing keys of the table at ``path`` (see config_schema)."""
        for at, message in self.shape.pop(path, ()):
            self.add_config(at, message)

    def flush_shape(self) -> None:
        """Report what no check asked for (a table no check reads): nothing is ever lost."""
        for path in list(self.shape):
            self.check_shape(path)

    def text_value(self, table: dict[str, Any], key: str, path: tuple[str, ...]) -> str | None:
        """The stripped text at ``key``; None when absent (the models report a required one)."""
        dotted = dotted_key((*path, key))
        if key not in table:
            return None
        value = table[key]
        if not isinstance(value, str):
            self.add_config(
                (*path, key), f"{dotted} must be text in quotes, not {type_name(value)}"
            )
            return None
        if not value.strip():
            self.add_config((*path, key), f"{dotted} must not be empty")
            return None
        return value.strip()

    def int_value(
        self,
        table: dict[str, Any],
        key: str,
        path: tuple[str, ...],
        lo: int,
        hi: int,
        default: int,
    ) -> int:
        """The whole number at ``key`` from ``lo`` to ``hi``; ``default`` when absent or wrong
        (wrong is reported)."""
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            dotted = dotted_key((*path, key))
            self.add_config((*path, key), f"{dotted} must be a whole number from {lo} to {hi}")
            return default
        return value

    def table_value(self, table: dict[str, Any], key: str, path: tuple[str, ...]):
        value = table.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            dotted = dotted_key((*path, key))
            self.add_config(
                (*path, key), f"{dotted} must be a table ([{dotted}]), not {type_name(value)}"
            )
            return None
        return value

    def bool_value(self, table: dict[str, Any], key: str, path: tuple[str, ...]) -> bool:
        value = table.get(key, False)
        if not isinstance(value, bool):
            self.add_config(
                (*path, key),
                f"{dotted_key((*path, key))} must be true or false, not {type_name(value)}",
            )
            return False
        return value


def suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def type_name(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def is_env_name(value: str) -> bool:
    """An environment variable's NAME in capitals, not something that looks like a secret key.

    Keys and tokens are long runs of letters and digits; names have words joined by "_".
    """
    if not _ENV_NAME.fullmatch(value):
        return False
    return "_" in value or len(value) < 16 or sum(c.isdigit() for c in value) < 4
