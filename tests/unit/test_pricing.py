"""The pricing table: validation, lookup by model and day, exact decimal costs."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from receptionist.postcall.pricing import (
    ModelPrice,
    PricingError,
    PricingTable,
    UnknownModelPrice,
    cost_breakdown,
    cost_of,
    default_pricing_path,
    load_pricing,
    parse_pricing,
    round_cost,
    usd_to_inr,
)
from receptionist.usage import TokenUsage

LIVE = "gemini-2.5-flash-native-audio-preview-09-2025"


def entry(
    model: str = "m",
    valid_from: str = "2025-01-01",
    audio_input: str = '"3.00"',
    text_input: str = '"0.30"',
    audio_output: str = '"12.00"',
    text_output: str = '"1.20"',
    source: str = "test",
    drop: str | None = None,
    extra: str = "",
) -> str:
    fields = {
        "model": f'"{model}"',
        "valid_from": valid_from,
        "currency": '"USD"',
        "audio_input": audio_input,
        "text_input": text_input,
        "audio_output": audio_output,
        "text_output": text_output,
        "source": f'"{source}"',
    }
    if drop:
        del fields[drop]
    body = "\n".join(f"{k} = {v}" for k, v in fields.items())
    return f"[[price]]\n{body}\n{extra}\n"


def price(model: str, valid_from: date, audio_in: str = "3", note: str = "") -> ModelPrice:
    return ModelPrice(
        model=model,
        valid_from=valid_from,
        currency="USD",
        audio_input=Decimal(audio_in),
        text_input=Decimal("0.30"),
        audio_output=Decimal("12"),
        text_output=Decimal("1.20"),
        source=note or "test",
    )


SEED = price("gemini-2.5-flash*native-audio*", date(2025, 1, 1))


# --- the packaged table ------------------------------------------------------------------------


def test_packaged_table_loads_and_prices_the_live_and_analysis_models() -> None:
    table = load_pricing()
    assert default_pricing_path().name == "pricing.toml"
    assert len(table) >= 3
    assert len(table.digest) == 12
    live = table.price_for(LIVE, date(2025, 9, 30))
    assert live.model == "gemini-2.5-flash*native-audio*"
    assert (live.audio_input, live.audio_output) == (Decimal("3.00"), Decimal("12.00"))
    assert (live.text_input, live.text_output) == (Decimal("0.30"), Decimal("1.20"))
    assert "seed production code" in live.source
    # the seed's own production model name matches the same glob
    assert table.price_for("gemini-2.5-flash-preview-native-audio-dialog", date(2025, 8, 1)) == live
    analysis = table.price_for("gemini-2.5-flash", date(2025, 9, 30))
    assert analysis.model == "gemini-2.5-flash"
    assert "UNVERIFIED" in analysis.source
    # the wire spelling "models/..." is accepted
    assert table.price_for("models/gemini-2.5-flash", date(2025, 9, 30)) == analysis


def test_load_pricing_from_a_given_path(tmp_path: Path) -> None:
    f = tmp_path / "prices.toml"
    f.write_text(entry(model="x-model"))
    table = load_pricing(f)
    assert table.origin == str(f)
    assert table.price_for("x-model", date(2025, 1, 1)).text_input == Decimal("0.30")


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PricingError, match="cannot read pricing file"):
        load_pricing(tmp_path / "nope.toml")


# --- validation --------------------------------------------------------------------------------


def test_missing_field_names_the_entry() -> None:
    text = entry(model="good") + entry(model="bad-one", drop="audio_output")
    with pytest.raises(PricingError) as err:
        parse_pricing(text, origin="prices.toml")
    msg = str(err.value)
    assert "prices.toml" in msg
    assert "entry 2" in msg and "'bad-one'" in msg
    assert "audio_output" in msg


@pytest.mark.parametrize("bad", ['"-0.01"', "-1", "-0.5"])
def test_negative_price_is_rejected(bad: str) -> None:
    with pytest.raises(
        PricingError, match=r"entry 1 \(model 'm'\): text_output must not be negative"
    ):
        parse_pricing(entry(text_output=bad))


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ('"2025-13-01"', "valid_from must be a date"),
        ('"yesterday"', "valid_from must be a date"),
        ("2025-01-01T10:00:00", "not a date-time"),
        ("20250101", "valid_from must be a date"),
    ],
)
def test_bad_date_is_rejected(value: str, needle: str) -> None:
    with pytest.raises(PricingError, match=needle):
        parse_pricing(entry(valid_from=value))


def test_date_as_string_is_accepted() -> None:
    table = parse_pricing(entry(valid_from='"2025-02-03"'))
    assert table.entries[0].valid_from == date(2025, 2, 3)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (entry(audio_input='"abc"'), "audio_input is not a number"),
        (entry(audio_input="true"), "audio_input must be a number"),
        (entry(audio_input="nan"), "audio_input must be finite"),
        (entry(audio_input="inf"), "audio_input must be finite"),
        (entry(model=""), "model must be a non-empty string"),
        (entry(source=" "), "source must say where"),
        (entry(extra="colour = 1"), "unknown field"),
        (entry().replace('"USD"', '"EUR"'), "currency 'EUR' is not supported"),
        (entry() + entry(), "repeats entry 1"),
        ("", "no \\[\\[price\\]\\] entries"),
        ("version = 2\n" + entry(), "unknown top-level key"),
        ("[[price]\n", "not valid TOML"),
        ("price = 3\n", "no \\[\\[price\\]\\] entries"),
    ],
)
def test_other_validation_errors(text: str, needle: str) -> None:
    with pytest.raises(PricingError, match=needle):
        parse_pricing(text)


def test_numbers_and_strings_give_exact_decimals() -> None:
    table = parse_pricing(entry(text_input="0.3", audio_input="3", text_output='"1.2"'))
    e = table.entries[0]
    assert e.text_input == Decimal("0.3")  # not 0.2999999999…
    assert e.audio_input == Decimal(3)
    assert e.text_output == Decimal("1.2")


# --- lookup ------------------------------------------------------------------------------------


def test_exact_name_beats_glob() -> None:
    exact = price(LIVE, date(2025, 1, 1), audio_in="2")
    table = PricingTable([SEED, exact])
    assert table.price_for(LIVE, date(2025, 6, 1)) is exact
    assert table.price_for("gemini-2.5-flash-native-audio-other", date(2025, 6, 1)) is SEED


def test_exact_beats_a_newer_glob() -> None:
    exact = price(LIVE, date(2025, 1, 1), audio_in="2")
    newer_glob = price("gemini-2.5-flash*native-audio*", date(2025, 6, 1), audio_in="4")
    table = PricingTable([exact, newer_glob])
    assert table.price_for(LIVE, date(2025, 7, 1)) is exact


def test_versions_by_date() -> None:
    v1 = price("gemini-2.5-flash*native-audio*", date(2025, 1, 1), audio_in="3")
    v2 = price("gemini-2.5-flash*native-audio*", date(2025, 9, 1), audio_in="2.5")
    table = PricingTable([v2, v1])  # order in the file does not matter
    assert table.price_for(LIVE, date(2025, 8, 31)) is v1
    assert table.price_for(LIVE, date(2025, 9, 1)) is v2  # valid_from is inclusive
    assert table.price_for(LIVE, date(2026, 1, 1)) is v2
    assert table.price_for(LIVE, datetime(2025, 9, 1, 0, 0)) is v2
    assert v2.version == "gemini-2.5-flash*native-audio*@2025-09-01"


def test_more_specific_glob_wins_a_tie() -> None:
    broad = price("gemini-*", date(2025, 1, 1), audio_in="9")
    narrow = price("gemini-2.5-flash*native-audio*", date(2025, 1, 1))
    table = PricingTable([broad, narrow])
    assert table.price_for(LIVE, date(2025, 2, 1)) is narrow
    assert table.price_for("gemini-3-pro", date(2025, 2, 1)) is broad


def test_unknown_model_raises() -> None:
    table = PricingTable([SEED], origin="prices.toml")
    with pytest.raises(UnknownModelPrice) as err:
        table.price_for("gpt-4o-realtime", date(2025, 6, 1))
    assert err.value.model == "gpt-4o-realtime"
    assert err.value.on == date(2025, 6, 1)
    assert "gpt-4o-realtime" in str(err.value) and "prices.toml" in str(err.value)


def test_model_before_its_first_price_is_unknown() -> None:
    table = PricingTable([price(LIVE, date(2025, 9, 1))])
    with pytest.raises(UnknownModelPrice):
        table.price_for(LIVE, date(2025, 8, 31))


def test_glob_is_case_sensitive_and_anchored() -> None:
    table = PricingTable([SEED])
    with pytest.raises(UnknownModelPrice):
        table.price_for("GEMINI-2.5-FLASH-NATIVE-AUDIO", date(2025, 6, 1))
    with pytest.raises(UnknownModelPrice):
        table.price_for("x-gemini-2.5-flash-native-audio", date(2025, 6, 1))


# --- cost arithmetic ---------------------------------------------------------------------------


def test_one_million_audio_input_tokens_cost_three_dollars() -> None:
    cost = cost_of(TokenUsage(input_tokens=1_000_000, input_audio_tokens=1_000_000), SEED)
    assert cost == Decimal("3.000000")
    assert str(round_cost(cost)) == "3.000000"


def test_every_modality_split_is_priced_exactly() -> None:
    usage = TokenUsage(
        purpose="live",
        input_tokens=12_345,
        output_tokens=6_789,
        input_audio_tokens=12_000,
        input_text_tokens=345,
        output_audio_tokens=6_700,
        output_text_tokens=89,
    )
    # 12000*3 + 345*0.30 + 6700*12 + 89*1.20 = 36000 + 103.5 + 80400 + 106.8 = 116610.3 per 1M
    assert cost_of(usage, SEED) == Decimal("0.1166103")
    assert round_cost(cost_of(usage, SEED)) == Decimal("0.116610")


def test_tiny_amounts_are_not_lost_before_rounding() -> None:
    one = cost_of(TokenUsage(purpose="analysis", input_tokens=1, input_text_tokens=1), SEED)
    assert one == Decimal("0.0000003")
    assert round_cost(one) == Decimal("0.000000")
    assert round_cost(Decimal("0.0000005")) == Decimal("0.000001")  # half-up


def test_remainder_is_audio_for_live() -> None:
    usage = TokenUsage(purpose="live", input_tokens=1_000_000, output_tokens=1_000_000)
    b = cost_breakdown(usage, SEED)
    assert (b.input_audio, b.output_audio, b.input_text, b.output_text) == (1_000_000,) * 2 + (0, 0)
    assert b.remainder_modality == "audio"
    assert b.total == Decimal("15")  # 3 + 12


@pytest.mark.parametrize("purpose", ["analysis", "message"])
def test_remainder_is_text_for_analysis_and_message(purpose: str) -> None:
    usage = TokenUsage(purpose=purpose, input_tokens=1_000_000, output_tokens=1_000_000)
    b = cost_breakdown(usage, SEED)
    assert (b.input_text, b.output_text, b.input_audio, b.output_audio) == (1_000_000,) * 2 + (0, 0)
    assert b.total == Decimal("1.50")  # 0.30 + 1.20


def test_partial_split_charges_only_the_remainder_at_the_purpose_modality() -> None:
    # live: 100k input of which 10k are known text; 90k unknown → audio
    usage = TokenUsage(
        purpose="live", input_tokens=100_000, input_text_tokens=10_000, output_tokens=0
    )
    b = cost_breakdown(usage, SEED)
    assert (b.input_text, b.input_audio, b.input_remainder) == (10_000, 90_000, 90_000)
    assert b.total == Decimal("0.273")  # 10000*0.30 + 90000*3 = 273000 per 1M


def test_split_larger_than_total_is_taken_as_it_is() -> None:
    usage = TokenUsage(purpose="live", input_tokens=10, input_audio_tokens=1_000_000)
    b = cost_breakdown(usage, SEED)
    assert b.input_audio == 1_000_000 and b.input_remainder == 0
    assert b.total == Decimal("3")


def test_total_beyond_input_and_output_is_charged_as_text_output() -> None:
    # e.g. thinking tokens of an analysis call: counted in total, billed as output
    usage = TokenUsage(
        purpose="analysis",
        input_tokens=1_000,
        input_text_tokens=1_000,
        output_tokens=200,
        output_text_tokens=200,
        total_tokens=1_500,
    )
    b = cost_breakdown(usage, SEED)
    assert b.unattributed == 300
    assert b.output_text == 500
    assert b.total == Decimal("0.0009")  # 1000*0.30 + 500*1.20 = 900 per 1M


def test_zero_usage_costs_zero() -> None:
    assert cost_of(TokenUsage(), SEED) == 0


def test_unknown_purpose_and_negative_counts_are_errors() -> None:
    with pytest.raises(ValueError, match="unknown purpose"):
        cost_of(TokenUsage(purpose="training", input_tokens=1), SEED)
    with pytest.raises(ValueError, match="must not be negative"):
        cost_of(TokenUsage(input_tokens=-1), SEED)


def test_token_counts_from_a_row() -> None:
    counts = TokenUsage.from_row(
        {"purpose": "message", "input_tokens": 5, "output_tokens": 2, "total_tokens": 0}
    )
    assert counts == TokenUsage(purpose="message", input_tokens=5, output_tokens=2)


# --- currency ----------------------------------------------------------------------------------


def test_usd_to_inr() -> None:
    assert usd_to_inr(Decimal("3.000000"), Decimal("83.25")) == Decimal("249.75")
    assert usd_to_inr(Decimal("0.116610"), Decimal("83.25")) == Decimal("9.71")  # 9.7077825
    assert usd_to_inr(Decimal("0.000006"), Decimal("83.25"), places=6) == Decimal("0.000500")
    assert usd_to_inr(Decimal("0.01"), Decimal("50")) == Decimal("0.50")


def test_usd_to_inr_rejects_bad_rates() -> None:
    with pytest.raises(ValueError):
        usd_to_inr(Decimal(1), Decimal(0))
    with pytest.raises(ValueError):
        usd_to_inr(Decimal(1), Decimal("-83"))
    with pytest.raises(TypeError):
        usd_to_inr(Decimal(1), 83.25)  # type: ignore[arg-type]
