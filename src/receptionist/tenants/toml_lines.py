"""Where each key of a tenant.toml was written, so a problem can name its file and line.

``tomllib`` gives values without positions; :class:`KeyLines` reads the text once more, only far
enough to know which line each key path (and each element of an array) starts on.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable

__all__ = ["KeyLines", "dotted_key", "item_key", "split_key"]

_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_HEADER_LINE = re.compile(r"^\s*\[\[?\s*(" + _KEY_PART + r"(?:\s*\.\s*" + _KEY_PART + r")*)\s*\]")
_KEY_LINE = re.compile(r"^\s*(" + _KEY_PART + r"(?:\s*\.\s*" + _KEY_PART + r")*)\s*=\s*(.*)$")
_KEY_AT = re.compile(r"[ \t]*(" + _KEY_PART + r"(?:[ \t]*\.[ \t]*" + _KEY_PART + r")*)[ \t]*=")
_SPLIT_PARTS = re.compile(_KEY_PART)


def split_key(dotted: str) -> tuple[str, ...]:
    parts = []
    for raw in _SPLIT_PARTS.findall(dotted):
        if raw[:1] in "\"'":
            raw = raw[1:-1]
        parts.append(raw)
    return tuple(parts)


def item_key(index: int) -> str:
    """Path part for the ``index``-th (0-based) element of an array or array of tables."""
    return f"[{index}]"


def dotted_key(path: Iterable[str]) -> str:
    """A key path as the owner wrote it: ``actions.order.to`` (element positions left out)."""
    return ".".join(part for part in path if not (part.startswith("[") and part.endswith("]")))


class KeyLines:
    """Where each key path was written in a TOML text (approximate, for messages only).

    Elements of arrays get a path part ``[i]`` (see :func:`item_key`), both in arrays of tables
    (``[[actions.order]]``: the second one is ``("actions", "order", "[1]")``) and in arrays
    written as values, even across lines (``variables = [ ... ]``), so each can be pointed at.
    """

    def __init__(self, text: str) -> None:
        self._lines: dict[tuple[str, ...], int] = {}
        self._text = text
        self._starts = [0] + [m.end() for m in re.finditer("\n", text)]
        arrays: dict[tuple[str, ...], int] = {}  # array of tables -> index of its last element
        table: tuple[str, ...] = ()
        skip_to = 0  # lines before this one belong to a value that spans lines
        for index, line in enumerate(text.split("\n")):
            if index < skip_to:
                continue
            number = index + 1
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            header = _HEADER_LINE.match(line)
            if header and not _KEY_LINE.match(line):
                parts = split_key(header.group(1))
                if stripped.startswith("[[") and parts:
                    plain = (*self._resolve(parts[:-1], arrays), parts[-1])
                    self._lines.setdefault(plain, number)
                    arrays[plain] = arrays.get(plain, -1) + 1
                    table = (*plain, item_key(arrays[plain]))
                else:
                    table = self._resolve(parts, arrays)
                self._lines.setdefault(table, number)
                continue
            key = _KEY_LINE.match(line)
            if not key:
                continue
            path = table + split_key(key.group(1))
            self._lines.setdefault(path, number)
            end = self._value(self._starts[index] + key.start(2), path)
            skip_to = max(index + 1, self._line_index(end) + 1)

    @staticmethod
    def _resolve(parts: tuple[str, ...], arrays: dict[tuple[str, ...], int]) -> tuple[str, ...]:
        """A table header's path, with the current element of each array of tables in it."""
        out: tuple[str, ...] = ()
        for part in parts:
            out = (*out, part)
            if out in arrays:
                out = (*out, item_key(arrays[out]))
        return out

    def _line_index(self, pos: int) -> int:
        return bisect.bisect_right(self._starts, pos) - 1

    def _note(self, path: tuple[str, ...], pos: int) -> None:
        self._lines.setdefault(path, self._line_index(pos) + 1)

    def _skip(self, pos: int, *, newlines: bool) -> int:
        """Past blanks (and, inside arrays and tables, new lines and comments)."""
        text = self._text
        while pos < len(text):
            ch = text[pos]
            if ch in " \t" or (newlines and ch == "\n"):
                pos += 1
            elif newlines and ch == "#":
                end = text.find("\n", pos)
                pos = len(text) if end < 0 else end
            else:
                break
        return pos

    def _value(self, pos: int, path: tuple[str, ...]) -> int:
        """Note the lines inside the value starting at ``pos``; returns the position after it."""
        text = self._text
        pos = self._skip(pos, newlines=False)
        if pos >= len(text):
            return pos
        ch = text[pos]
        if ch == "[":
            return self._array(pos + 1, path)
        if ch == "{":
            return self._inline_table(pos + 1, path)
        if ch in "\"'":
            return self._string(pos)
        while pos < len(text) and text[pos] not in ",]}\n#":
            pos += 1
        return pos

    def _string(self, pos: int) -> int:
        text = self._text
        quote = text[pos]
        multi = text.startswith(quote * 3, pos)
        pos += 3 if multi else 1
        while pos < len(text):
            ch = text[pos]
            if ch == "\\" and quote == '"':
                pos += 2
            elif multi and text.startswith(quote * 3, pos):
                pos += 3
                while pos < len(text) and text[pos] == quote:  # """a""""" ends with quotes
                    pos += 1
                return pos
            elif not multi and ch == quote:
                return pos + 1
            elif not multi and ch == "\n":
                return pos
            else:
                pos += 1
        return pos

    def _array(self, pos: int, path: tuple[str, ...]) -> int:
        text = self._text
        index = 0
        while True:
            pos = self._skip(pos, newlines=True)
            if pos >= len(text):
                return pos
            if text[pos] == "]":
                return pos + 1
            if text[pos] == ",":
                pos += 1
                continue
            element = (*path, item_key(index))
            self._note(element, pos)
            index += 1
            end = self._value(pos, element)
            pos = end if end > pos else pos + 1

    def _inline_table(self, pos: int, path: tuple[str, ...]) -> int:
        text = self._text
        while True:
            pos = self._skip(pos, newlines=True)
            if pos >= len(text):
                return pos
            if text[pos] == "}":
                return pos + 1
            if text[pos] == ",":
                pos += 1
                continue
            key = _KEY_AT.match(text, pos)
            if key is None:  # not TOML; tomllib reports it
                end = self._value(pos, path)
                pos = end if end > pos else pos + 1
                continue
            inner = (*path, *split_key(key.group(1)))
            self._note(inner, pos)
            pos = max(self._value(key.end(), inner), key.end())

    def line(self, *path: str) -> int | None:
        """Line of ``path``, else of its nearest written parent, else None."""
        while path:
            found = self._lines.get(tuple(path))
            if found is not None:
                return found
            path = path[:-1]
        return None
