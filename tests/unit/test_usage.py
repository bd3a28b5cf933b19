"""TokenUsage: one model's tokens, added up the way the store and the session need."""

from __future__ import annotations

import pytest

from receptionist.usage import TokenUsage


def test_adding_sums_every_figure_and_the_totals() -> None:
    a = TokenUsage(model_name="m", input_tokens=10, output_tokens=5, input_audio_tokens=8)
    b = TokenUsage(model_name="m", input_tokens=1, output_tokens=2, total_tokens=7)
    s = a + b
    assert (s.input_tokens, s.output_tokens, s.input_audio_tokens) == (11, 7, 8)
    assert s.total_tokens == 15 + 7  # a reported none: its input + output count
    assert (s.model_name, s.purpose) == ("m", "live")


def test_adding_merges_details_the_later_winning() -> None:
    a = TokenUsage(model_name="m", details={"model_version": "1", "thoughts_tokens": 3})
    b = TokenUsage(model_name="m", details={"model_version": "2"})
    assert (a + b).details == {"model_version": "2", "thoughts_tokens": 3}
    assert (TokenUsage(model_name="m") + TokenUsage(model_name="m")).details is None


@pytest.mark.parametrize("other", [TokenUsage(model_name="x"), TokenUsage(purpose="message")])
def test_other_models_or_purposes_are_not_added(other: TokenUsage) -> None:
    with pytest.raises(ValueError):
        TokenUsage() + other


def test_from_a_row() -> None:
    row = {"model_name": "m", "purpose": "message", "input_tokens": 5, "total_tokens": 0}
    assert TokenUsage.from_row(row) == TokenUsage(model_name="m", purpose="message", input_tokens=5)
