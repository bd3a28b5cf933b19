"""Tokens a model spent: the one shape engines report, calls carry, the store writes and the
pricing costs (the figures of an ``ai_token_usage`` row).

A bottom-layer value: engines, store and postcall all import it; it imports nothing of theirs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: the token figures, in the order of the ``ai_token_usage`` columns
FIGURES = (
    "input_tokens",
    "output_tokens",
    "input_audio_tokens",
    "input_text_tokens",
    "output_audio_tokens",
    "output_text_tokens",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenUsage:
    """Tokens one model spent for one purpose ('live' | 'analysis' | 'message').

    ``total_tokens`` is what the model reported; None when it reported none (then
    :attr:`total` is input + output). ``details`` is what the row records beside the figures
    (the model version, thinking tokens, the price applied)."""

    model_name: str = ""
    purpose: str = "live"
    input_tokens: int = 0
    output_tokens: int = 0
    input_audio_tokens: int = 0
    input_text_tokens: int = 0
    output_audio_tokens: int = 0
    output_text_tokens: int = 0
    total_tokens: int | None = None
    details: dict[str, Any] | None = None

    @property
    def total(self) -> int:
        if self.total_tokens is not None:
            return self.total_tokens
        return self.input_tokens + self.output_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        """Two spends of the same model for the same purpose as one (details merged, the
        later one's keys winning)."""
        if (other.model_name, other.purpose) != (self.model_name, self.purpose):
            raise ValueError(
                f"cannot add {other.model_name}/{other.purpose} to {self.model_name}/{self.purpose}"
            )
        details = {**(self.details or {}), **(other.details or {})}
        return dataclasses.replace(
            self,
            total_tokens=self.total + other.total,
            details=details or None,
            **{f: getattr(self, f) + getattr(other, f) for f in FIGURES},
        )

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> TokenUsage:
        """From a mapping with the ``ai_token_usage`` column names (missing figures are 0; a
        total of 0 counts as none reported)."""
        return cls(
            model_name=str(row.get("model_name") or ""),
            purpose=str(row.get("purpose") or "live"),
            total_tokens=int(row["total_tokens"]) if row.get("total_tokens") else None,
            details=row.get("details"),
            **{f: int(row.get(f) or 0) for f in FIGURES},
        )
