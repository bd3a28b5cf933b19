"""Hostile `start`, `dtmf`, `mark` and `stop` frames: bounded and cleaned where they enter."""

from __future__ import annotations

import orjson
import pytest

from receptionist.telephony import exotel


def start(**fields: object) -> str:
    values: dict[str, object] = {
        "stream_sid": "MZ1",
        "call_sid": "CA1",
        "from_number": "+919800000001",
        "to_number": "+918000000001",
    }
    values.update(fields)
    return exotel.start_frame(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "call_sid",
    ["CA1\n12:00:00 ERROR forged", "CA\x001", "CA\x1b[2J", "CA 1", "C" * 129, "ಕರೆ"],
)
def test_an_id_with_controls_spaces_or_absurd_length_is_refused(call_sid: str) -> None:
    with pytest.raises(exotel.ProtocolError) as caught:
        exotel.parse_frame(start(call_sid=call_sid))
    assert caught.value.kind == "bad_id"
    assert "\n" not in caught.value.detail and len(caught.value.detail) < 60


def test_stream_sid_is_checked_like_the_call_sid() -> None:
    with pytest.raises(exotel.ProtocolError, match=r"bad_id: start\.stream_sid"):
        exotel.parse_frame(start(stream_sid="MZ\r\n"))


def test_real_looking_ids_pass() -> None:
    sid = "b5d2c3f5e9a1a2f4c8c2e12d3f4b5c6d"
    parsed = exotel.parse_frame(start(call_sid=sid, stream_sid="stream-01.a:b_c"))
    assert isinstance(parsed, exotel.Start) and parsed.call_sid == sid


def test_numbers_and_parameters_lose_control_characters_and_are_bounded() -> None:
    params = {f"k{i}": "v" for i in range(40)}
    params["tenant"] = "bakery\x00"
    params["note"] = "[/]\x1b[31mred" + "x" * 1000
    params["\x00"] = "key was only a control character"
    parsed = exotel.parse_frame(
        start(
            from_number="+91\x009800\r\n000001\x1b[0m",
            to_number="9" * 100,
            custom_parameters=params,
        )
    )
    assert isinstance(parsed, exotel.Start)
    assert parsed.from_number == "+919800000001[0m"
    assert len(parsed.to_number) == exotel.MAX_NUMBER_CHARS
    assert len(parsed.custom_parameters) == exotel.MAX_PARAMS
    assert "" not in parsed.custom_parameters
    for key, value in parsed.custom_parameters.items():
        assert key.isprintable() and value.isprintable()
        assert len(value) <= exotel.MAX_PARAM_VALUE_CHARS


def test_dtmf_mark_and_stop_are_cleaned() -> None:
    dtmf = exotel.parse_frame(orjson.dumps({"event": "dtmf", "dtmf": {"digit": "5\x1b[2J"}}))
    assert dtmf == exotel.Dtmf(digit="5[2J", duration_ms=0)
    mark = exotel.parse_frame(orjson.dumps({"event": "mark", "mark": {"name": "a\nb" * 100}}))
    assert isinstance(mark, exotel.Mark) and mark.name.isprintable() and len(mark.name) <= 128
    stop = exotel.parse_frame(
        orjson.dumps({"event": "stop", "stop": {"call_sid": "CA1", "reason": "x\r\nFORGED"}})
    )
    assert stop == exotel.Stop(call_sid="CA1", reason="xFORGED")
    with pytest.raises(exotel.ProtocolError, match="missing_field"):
        exotel.parse_frame(orjson.dumps({"event": "dtmf", "dtmf": {"digit": "\x00"}}))
