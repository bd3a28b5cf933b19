"""Exotel voicebot wire protocol: parsing Exotel's frames, emitting ours, chunking outgoing audio.

Inbound frames are written by hand exactly as Exotel documents them
(developer.exotel.com/docs/agentstream/websocket-protocol): every value is a string on the wire.
"""

from __future__ import annotations

import base64
import json
import math
import random
import struct

import pytest

from receptionist.telephony import exotel
from receptionist.telephony.exotel import (
    CHUNK_ALIGN_BYTES,
    MAX_CHUNK_BYTES,
    Connected,
    Dtmf,
    Emitter,
    Mark,
    Media,
    OutboundChunker,
    ProtocolError,
    Start,
    Stop,
    parse_frame,
    parse_outbound,
)

SID = "MZ2a8c1f0e9d7b6a5c4e3f2d1c0b9a8e7f"
CALL = "CA5e1f2d3c4b5a69788796a5b4c3d2e1f0"
ACCOUNT = "ACexotel0123456789"


def sine_pcm(n_samples: int, freq: float = 440.0, rate: int = 8000, amp: int = 12000) -> bytes:
    return struct.pack(
        f"<{n_samples}h",
        *(int(amp * math.sin(2 * math.pi * freq * i / rate)) for i in range(n_samples)),
    )


def start_json(sample_rate: str = "8000", **start_overrides: object) -> str:
    start: dict[str, object] = {
        "stream_sid": SID,
        "call_sid": CALL,
        "account_sid": ACCOUNT,
        "from": "+919876543210",
        "to": "+918047491899",
        "custom_parameters": {"tenant": "sweet-crumbs", "lang": "hi-IN"},
        "media_format": {"encoding": "audio/x-raw", "sample_rate": sample_rate, "bit_rate": "16"},
    }
    start.update(start_overrides)
    return json.dumps(
        {"event": "start", "sequence_number": "1", "stream_sid": SID, "start": start}, indent=1
    )


def media_json(payload: object = None, **media_overrides: object) -> str:
    media: dict[str, object] = {"chunk": "2", "timestamp": "200"}
    if payload is not None:
        media["payload"] = payload
    media.update(media_overrides)
    return json.dumps({"event": "media", "sequence_number": "3", "stream_sid": SID, "media": media})


def kind_of(frame: str | bytes) -> str:
    with pytest.raises(ProtocolError) as info:
        parse_frame(frame)
    assert str(info.value).startswith(info.value.kind + ":")
    return info.value.kind


# --- inbound: every documented event ----------------------------------------------------------


def test_connected() -> None:
    assert parse_frame('{"event": "connected"}') == Connected()


@pytest.mark.parametrize("rate", ["8000", "16000", "24000"])
def test_start_documented_frame(rate: str) -> None:
    ev = parse_frame(start_json(rate))
    assert ev == Start(
        stream_sid=SID,
        call_sid=CALL,
        account_sid=ACCOUNT,
        from_number="+919876543210",
        to_number="+918047491899",
        custom_parameters={"tenant": "sweet-crumbs", "lang": "hi-IN"},
        sample_rate=int(rate),
        encoding="audio/x-raw",
        bit_rate=16,
    )
    assert isinstance(ev.sample_rate, int)
    assert isinstance(ev.bit_rate, int)


def test_start_defaults_when_optional_parts_missing() -> None:
    frame = json.dumps(
        {"event": "start", "stream_sid": SID, "start": {"call_sid": CALL}},
    )
    ev = parse_frame(frame)
    assert isinstance(ev, Start)
    assert ev.stream_sid == SID  # taken from the top level when the body lacks it
    assert ev.sample_rate == 8000  # Exotel's default rate
    assert ev.bit_rate == 16
    assert ev.encoding == "audio/x-raw"
    assert ev.custom_parameters == {}
    assert ev.from_number == ev.to_number == ev.account_sid == ""


def test_start_custom_parameters_values_become_strings() -> None:
    ev = parse_frame(start_json(custom_parameters={"n": 3, "empty": None}))
    assert isinstance(ev, Start)
    assert ev.custom_parameters == {"n": "3", "empty": ""}


def test_start_custom_parameters_not_an_object_is_ignored() -> None:
    ev = parse_frame(start_json(custom_parameters=["a", "b"]))
    assert isinstance(ev, Start)
    assert ev.custom_parameters == {}


def test_media_with_real_pcm() -> None:
    pcm = sine_pcm(800)  # 100 ms at 8 kHz
    ev = parse_frame(media_json(base64.b64encode(pcm).decode()))
    assert ev == Media(sequence=3, chunk=2, timestamp_ms=200, pcm=pcm)
    assert len(ev.pcm) == 1600


def test_media_empty_payload_is_empty_pcm() -> None:
    ev = parse_frame(media_json(""))
    assert isinstance(ev, Media)
    assert ev.pcm == b""


def test_media_garbage_counters_fall_back_to_zero() -> None:
    ev = parse_frame(media_json("AAAAAA==", chunk="x", timestamp=None))
    assert isinstance(ev, Media)
    assert (ev.chunk, ev.timestamp_ms, ev.pcm) == (0, 0, bytes(4))


def test_dtmf() -> None:
    frame = (
        '{"event":"dtmf","sequence_number":"7","stream_sid":"' + SID + '",'
        '"dtmf":{"digit":"5","duration":"100"}}'
    )
    assert parse_frame(frame) == Dtmf(digit="5", duration_ms=100)


@pytest.mark.parametrize("digit", ["0", "9", "*", "#"])
def test_dtmf_digits(digit: str) -> None:
    ev = parse_frame(exotel.dtmf_frame(SID, digit, sequence=4, duration_ms=250))
    assert ev == Dtmf(digit=digit, duration_ms=250)


def test_mark() -> None:
    frame = (
        '{"event":"mark","sequence_number":"15","stream_sid":"' + SID + '",'
        '"mark":{"name":"turn-3"}}'
    )
    assert parse_frame(frame) == Mark(name="turn-3")


def test_stop() -> None:
    frame = json.dumps(
        {
            "event": "stop",
            "sequence_number": "42",
            "stream_sid": SID,
            "stop": {"call_sid": CALL, "account_sid": ACCOUNT, "reason": "callended"},
        }
    )
    assert parse_frame(frame) == Stop(call_sid=CALL, reason="callended")


def test_bytes_input_accepted() -> None:
    pcm = sine_pcm(160)
    assert parse_frame(b'{"event":"connected"}') == Connected()
    ev = parse_frame(media_json(base64.b64encode(pcm).decode()).encode())
    assert isinstance(ev, Media)
    assert ev.pcm == pcm
    assert isinstance(parse_frame(start_json("16000").encode()), Start)


# --- inbound errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        ("", "not_json"),
        ("{", "not_json"),
        ("event=media", "not_json"),
        (b"\xff\xfe{}", "not_json"),
        ('[{"event":"connected"}]', "not_object"),
        ('"connected"', "not_object"),
        ("42", "not_object"),
        ("null", "not_object"),
        ('{"event":"hangup"}', "unknown_event"),
        ('{"event":"MEDIA"}', "unknown_event"),
        ('{"event":5}', "unknown_event"),
        ('{"stream_sid":"MZ1","media":{"payload":"AAAA"}}', "unknown_event"),  # no event
        ("{}", "unknown_event"),
    ],
)
def test_structural_errors(frame: str | bytes, kind: str) -> None:
    assert kind_of(frame) == kind


def test_missing_event_detail_says_none() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_frame("{}")
    assert info.value.detail == "(none)"


@pytest.mark.parametrize(
    "payload",
    [
        "AAA",  # bad padding (length not a multiple of 4)
        "AA=A",  # padding in the middle
        "AAAAA===",  # impossible length
        "AA!A",  # not a base64 character
        "AAAA\n",  # newline
        " AAAA",  # whitespace
        "AAAA-_AA",  # url-safe alphabet is not what Exotel sends
    ],
)
def test_bad_base64(payload: str) -> None:
    assert kind_of(media_json(payload)) == "bad_base64"


def test_odd_length_pcm() -> None:
    assert kind_of(media_json(base64.b64encode(b"\x01\x02\x03").decode())) == "odd_length_pcm"


@pytest.mark.parametrize(
    ("frame", "detail"),
    [
        (media_json(), "media.payload"),
        (media_json(payload=123), "media.payload"),
        ('{"event":"media","stream_sid":"MZ1"}', "media"),
        ('{"event":"media","media":"AAAA"}', "media"),
        (start_json(call_sid=""), "start.call_sid"),
        ('{"event":"start","stream_sid":"MZ1","start":{"stream_sid":"MZ1"}}', "start.call_sid"),
        ('{"event":"start","stream_sid":"MZ1"}', "start"),
        ('{"event":"dtmf","dtmf":{"duration":"100"}}', "dtmf.digit"),
        ('{"event":"dtmf","dtmf":{"digit":""}}', "dtmf.digit"),
        ('{"event":"dtmf"}', "dtmf.digit"),
    ],
)
def test_missing_field(frame: str, detail: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_frame(frame)
    assert info.value.kind == "missing_field"
    assert info.value.detail == detail


@pytest.mark.parametrize("rate", ["44100", "11025", "0", "-8000", "48000"])
def test_bad_sample_rate(rate: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_frame(start_json(rate))
    assert info.value.kind == "bad_sample_rate"
    assert rate in info.value.detail


@pytest.mark.parametrize("rate", ["abc", "16000.0"])
def test_non_numeric_sample_rate_is_refused(rate: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_frame(start_json(rate))
    assert info.value.kind == "bad_sample_rate"


@pytest.mark.parametrize(
    "frame",
    [
        '{"event":"dtmf","dtmf":"5"}',
        '{"event":"mark","mark":"turn-1"}',
        '{"event":"stop","stop":"callended"}',
        '{"event":"start","start":{"call_sid":"CA1","media_format":"8000"}}',
    ],
)
def test_non_object_bodies_raise_protocol_error(frame: str) -> None:
    with pytest.raises(ProtocolError):
        parse_frame(frame)


def test_protocol_error_is_value_error() -> None:
    err = ProtocolError("bad_base64", "x")
    assert isinstance(err, ValueError)
    assert (err.kind, err.detail, str(err)) == ("bad_base64", "x", "bad_base64: x")


# --- outbound frames ---------------------------------------------------------------------------

TRICKY_SIDS = [
    SID,
    'MZ"quoted"',
    "MZ\\back\\slash",
    "MZ\u00e9\u0928\u092e\u0938\u094d\U0001f4de",
    "a\nb\tc\x01",
]


@pytest.mark.parametrize("sid", TRICKY_SIDS)
def test_emitter_media(sid: str) -> None:
    pcm = sine_pcm(1600, rate=16000)
    frame = Emitter(sid).media(pcm)
    msg = json.loads(frame)
    assert msg == {
        "event": "media",
        "stream_sid": sid,
        "media": {"payload": msg["media"]["payload"]},
    }
    assert base64.b64decode(msg["media"]["payload"], validate=True) == pcm
    assert "\n" not in frame


@pytest.mark.parametrize("sid", TRICKY_SIDS)
def test_emitter_mark_and_clear(sid: str) -> None:
    em = Emitter(sid)
    for name in ["turn-1", 'he said "hi"', "back\\slash", "नमस्ते"]:
        assert json.loads(em.mark(name)) == {
            "event": "mark",
            "stream_sid": sid,
            "mark": {"name": name},
        }
    assert json.loads(em.clear()) == {"event": "clear", "stream_sid": sid}


def test_emitter_empty_media() -> None:
    assert json.loads(Emitter(SID).media(b""))["media"]["payload"] == ""


def test_parse_outbound_decodes_media() -> None:
    pcm = sine_pcm(2400, rate=24000)
    em = Emitter('MZ"x"')
    msg = parse_outbound(em.media(pcm))
    assert msg["pcm"] == pcm
    assert msg["stream_sid"] == 'MZ"x"'
    assert parse_outbound(em.clear().encode()) == {"event": "clear", "stream_sid": 'MZ"x"'}
    assert parse_outbound(em.mark("m1"))["mark"] == {"name": "m1"}


@pytest.mark.parametrize(
    "frame",
    [
        '{"event":"media","stream_sid":"MZ1"}',
        '{"event":"media","media":{}}',
        '{"event":"media","media":{"payload":"AA!A"}}',
        '{"event":"media","media":"AAAA"}',
    ],
)
def test_parse_outbound_bad_media(frame: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_outbound(frame)
    assert info.value.kind == "bad_media"


def test_parse_outbound_not_object() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_outbound("[1]")
    assert info.value.kind == "not_object"


# --- simulated-caller builders round-trip through the parser ----------------------------------


@pytest.mark.parametrize("rate", [8000, 16000, 24000])
def test_start_frame_round_trip(rate: int) -> None:
    frame = exotel.start_frame(
        stream_sid=SID,
        call_sid=CALL,
        from_number="+919876543210",
        to_number="+918047491899",
        custom_parameters={"tenant": "t1"},
        sample_rate=rate,
        sequence=1,
    )
    raw = json.loads(frame)
    assert raw["sequence_number"] == "1"
    assert raw["start"]["media_format"]["sample_rate"] == str(rate)  # a string, like Exotel
    assert parse_frame(frame) == Start(
        stream_sid=SID,
        call_sid=CALL,
        account_sid="ACsimulated",
        from_number="+919876543210",
        to_number="+918047491899",
        custom_parameters={"tenant": "t1"},
        sample_rate=rate,
        encoding="audio/x-raw",
        bit_rate=16,
    )


def test_connected_frame_round_trip() -> None:
    assert parse_frame(exotel.connected_frame()) == Connected()


@pytest.mark.parametrize("sid", TRICKY_SIDS)
def test_caller_media_frame_round_trip(sid: str) -> None:
    pcm = sine_pcm(800)
    frame = exotel.caller_media_frame(sid, pcm, sequence=9, chunk=8, timestamp_ms=700)
    raw = json.loads(frame)
    assert raw["stream_sid"] == sid
    assert raw["sequence_number"] == "9"
    assert raw["media"]["chunk"] == "8"
    assert raw["media"]["timestamp"] == "700"
    assert parse_frame(frame) == Media(sequence=9, chunk=8, timestamp_ms=700, pcm=pcm)


def test_dtmf_mark_stop_frames_round_trip() -> None:
    assert parse_frame(exotel.dtmf_frame(SID, "#", sequence=3)) == Dtmf("#", 100)
    assert parse_frame(exotel.mark_frame(SID, 'a "b"', sequence=4)) == Mark('a "b"')
    assert parse_frame(exotel.stop_frame(SID, CALL, sequence=5)) == Stop(CALL, "callended")
    assert parse_frame(exotel.stop_frame(SID, CALL, sequence=5, reason="hangup")).reason == "hangup"
    for frame in (
        exotel.dtmf_frame(SID, "1", sequence=3),
        exotel.mark_frame(SID, "m", sequence=4),
        exotel.stop_frame(SID, CALL, sequence=5),
    ):
        raw = json.loads(frame)
        assert raw["stream_sid"] == SID
        assert isinstance(raw["sequence_number"], str)


# --- outbound chunking -------------------------------------------------------------------------

RATES = [8000, 16000, 24000]


def bytes_per_100ms(rate: int) -> int:
    """The chunker's default minimum: 100 ms at the rate (1,600 / 3,200 / 4,800 bytes), which
    is already a multiple of 320 at Exotel's three rates."""
    return rate * 2 // 10


def check_chunk(chunk: bytes, rate: int) -> None:
    assert len(chunk) >= bytes_per_100ms(rate), f"{len(chunk)} bytes < 100 ms at {rate} Hz"
    assert len(chunk) % CHUNK_ALIGN_BYTES == 0
    assert len(chunk) <= MAX_CHUNK_BYTES


def pattern(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


@pytest.mark.parametrize("rate", RATES)
def test_min_bytes_is_100ms_and_aligned(rate: int) -> None:
    ch = OutboundChunker(rate)
    assert ch.min_bytes == bytes_per_100ms(rate)
    assert ch.min_bytes >= rate * 2 // 10
    assert ch.min_bytes % CHUNK_ALIGN_BYTES == 0


def test_8k_first_frame_waits_100ms_not_200() -> None:
    # "3.2k [100ms data]" agree only at 16 kHz; at 8 kHz we keep the 100 ms (1,600 bytes)
    ch = OutboundChunker(8000)
    assert ch.push(bytes(1280)) == []  # 80 ms is not enough on its own
    assert [len(c) for c in ch.push(bytes(320))] == [1600]
    out = [c for n in (1000, 1920, 320, 5000, 160) for c in ch.push(bytes(n))]
    assert [len(c) for c in out] == [2880, 5120]  # all the aligned audio there is
    for c in out:
        check_chunk(c, 8000)


@pytest.mark.parametrize(("min_ms", "rate", "need"), [(200, 8000, 3200), (150, 24000, 7360)])
def test_a_longer_minimum_is_kept_and_aligned(min_ms: int, rate: int, need: int) -> None:
    ch = OutboundChunker(rate, min_ms=min_ms)  # EXOTEL_MIN_CHUNK_MS
    assert ch.min_bytes == need and need % CHUNK_ALIGN_BYTES == 0
    assert ch.push(bytes(need - CHUNK_ALIGN_BYTES)) == []
    assert [len(c) for c in ch.push(bytes(CHUNK_ALIGN_BYTES))] == [need]


@pytest.mark.parametrize("rate", [16000, 24000])
def test_16k_24k_chunks_hold_at_least_3200_bytes(rate: int) -> None:
    ch = OutboundChunker(rate)
    out = [c for n in (100, 3200, 5000, 9600) for c in ch.push(bytes(n))]
    assert out, "some chunks came out"
    assert sum(map(len, out)) + ch.buffered == 100 + 3200 + 5000 + 9600  # nothing lost
    for c in out:
        assert len(c) >= 3200


@pytest.mark.parametrize("rate", RATES)
def test_push_holds_back_until_100ms(rate: int) -> None:
    ch = OutboundChunker(rate)
    need = bytes_per_100ms(rate)
    assert ch.push(bytes(need - 2)) == []
    assert ch.buffered == need - 2
    out = ch.push(b"\x00\x00")
    assert [len(c) for c in out] == [need]
    assert ch.buffered == 0


@pytest.mark.parametrize("rate", RATES)
def test_push_keeps_unaligned_tail(rate: int) -> None:
    ch = OutboundChunker(rate)
    need = bytes_per_100ms(rate)
    data = pattern(need + 100, 1)
    out = ch.push(data)
    assert out == [data[:need]]
    assert ch.buffered == 100


@pytest.mark.parametrize("rate", RATES)
def test_random_pushes_conserve_bytes_and_respect_rules(rate: int) -> None:
    rng = random.Random(rate)
    chunks_checked = 0
    for trial in range(40):
        ch = OutboundChunker(rate)
        sent = bytearray()
        got = bytearray()
        for _ in range(rng.randint(1, 30)):
            n = rng.choice([0, 1, 2, rng.randint(0, 400), rng.randint(0, 12_000)])
            n -= n % 2  # PCM16 arrives in whole samples
            data = pattern(n, trial * 1000 + len(sent))
            sent += data
            for c in ch.push(data):
                check_chunk(c, rate)
                got += c
                chunks_checked += 1
        assert got == sent[: len(got)]  # in order, nothing invented
        assert len(got) + ch.buffered == len(sent)
        tail = ch.flush()
        for c in tail:
            assert len(c) % CHUNK_ALIGN_BYTES == 0
            assert 0 < len(c) <= MAX_CHUNK_BYTES
        flushed = b"".join(tail)
        pad = len(got) + len(flushed) - len(sent)
        assert 0 <= pad < CHUNK_ALIGN_BYTES
        assert bytes(got) + flushed == bytes(sent) + bytes(pad)
        assert ch.buffered == 0
    assert chunks_checked >= 40  # the rules were checked on many chunks, not on none


@pytest.mark.parametrize("rate", RATES)
def test_flush_pads_with_zeros(rate: int) -> None:
    ch = OutboundChunker(rate)
    data = b"\x01\x02" * 50  # 100 bytes, well under 100 ms
    assert ch.push(data) == []
    assert ch.flush() == [data + bytes(220)]
    assert ch.buffered == 0
    assert ch.flush() == []


def test_flush_aligned_remainder_is_not_padded() -> None:
    ch = OutboundChunker(8000)
    data = pattern(640, 2)
    ch.push(data)
    assert ch.flush() == [data]


def test_flush_long_remainder_is_one_chunk() -> None:
    ch = OutboundChunker(8000)
    ch.push(pattern(1000, 3))
    ch.push(pattern(500, 4))  # 1,500 < 1,600 (100 ms at 8 kHz): still buffered
    out = ch.flush()
    assert [len(c) for c in out] == [1600]


def test_flush_empty() -> None:
    assert OutboundChunker(16000).flush() == []


def test_reset_drops_buffer() -> None:
    ch = OutboundChunker(8000)
    ch.push(pattern(1000, 5))
    ch.reset()
    assert ch.buffered == 0
    assert ch.flush() == []
    fresh = pattern(3200, 6)
    assert ch.push(fresh) == [fresh]


def test_instances_do_not_share_buffers() -> None:
    a, b = OutboundChunker(8000), OutboundChunker(8000)
    a.push(b"\x01\x01")
    assert b.buffered == 0


@pytest.mark.parametrize("rate", RATES)
def test_huge_push_is_split(rate: int) -> None:
    ch = OutboundChunker(rate)
    data = pattern(1_000_000, 7)
    out = ch.push(data)
    assert len(out) >= 10
    for c in out:
        assert 0 < len(c) <= MAX_CHUNK_BYTES
        assert len(c) % CHUNK_ALIGN_BYTES == 0
    assert all(len(c) == 99_840 for c in out[:-1])
    joined = b"".join(out)
    assert joined == data[: len(joined)]
    assert len(joined) + ch.buffered == len(data)


@pytest.mark.parametrize(
    ("rate", "size"),
    [
        (8000, 99_840 + CHUNK_ALIGN_BYTES),
        (16000, 99_840 + CHUNK_ALIGN_BYTES),
        (24000, 99_840 + CHUNK_ALIGN_BYTES),
        (16000, 1_000_000),  # 10 x 99,840 + a 1,600-byte (50 ms) last chunk
        (24000, 1_000_000),  # ... 33 ms at 24 kHz
    ],
)
def test_split_never_leaves_a_short_last_chunk(rate: int, size: int) -> None:
    ch = OutboundChunker(rate)
    data = pattern(size, size)
    out = ch.push(data)
    assert len(out) >= 1
    for c in out:
        check_chunk(c, rate)
    # the short remainder waits for more audio (or the turn's flush) instead of going out
    sent = sum(map(len, out))
    assert b"".join(out) == data[:sent]
    assert 0 < ch.buffered < bytes_per_100ms(rate) and sent + ch.buffered == size
    more = ch.push(pattern(bytes_per_100ms(rate), 8))
    assert len(more) == 1
    check_chunk(more[0], rate)
    assert more[0][: size - sent] == data[sent:]
