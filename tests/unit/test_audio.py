"""Streaming resampler and PCM level helpers."""

from __future__ import annotations

import numpy as np
import pytest

from receptionist.audio import StreamResampler, duration_ms, rms, silence


def tone(freq: float, rate: int, seconds: float, amp: float = 10_000.0) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


def samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64)


def dominant_freq(pcm: bytes, rate: int) -> float:
    x = samples(pcm)
    x = x[len(x) // 10 : -len(x) // 10]  # skip filter edges
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spectrum)])


def zero_crossing_freq(pcm: bytes, rate: int) -> float:
    x = samples(pcm)
    x = x[len(x) // 10 : -len(x) // 10]
    crossings = np.count_nonzero(np.diff(np.signbit(x)))
    return crossings / 2 / (len(x) / rate)


def run_stream(rs: StreamResampler, pcm: bytes, chunk_bytes: int) -> bytes:
    out = bytearray()
    for i in range(0, len(pcm), chunk_bytes):
        out += rs.process(pcm[i : i + chunk_bytes])
    out += rs.flush()
    return bytes(out)


@pytest.mark.parametrize("rate", [8000, 16000, 24000])
def test_identity_when_rates_match(rate: int) -> None:
    rs = StreamResampler(rate, rate)
    pcm = tone(1000, rate, 0.1)
    assert rs.process(pcm) is pcm
    assert rs.flush() == b""
    rs.reset()
    assert rs.process(pcm) is pcm


def test_empty_input_returns_empty() -> None:
    rs = StreamResampler(8000, 16000)
    assert rs.process(b"") == b""


@pytest.mark.parametrize(
    ("in_rate", "out_rate"),
    [(8000, 16000), (24000, 8000), (16000, 24000), (24000, 16000), (16000, 8000)],
)
def test_sample_count_over_a_stream(in_rate: int, out_rate: int) -> None:
    rs = StreamResampler(in_rate, out_rate)
    pcm = tone(440, in_rate, 1.0)
    out = run_stream(rs, pcm, in_rate * 2 // 10)
    # the flush adds the filter's delay line: the end of the signal, never cut
    expected = len(pcm) // 2 * out_rate / in_rate + rs.delay_out_samples
    assert len(out) % 2 == 0
    assert abs(len(out) // 2 - expected) <= 4


def test_8k_to_16k_doubles() -> None:
    rs = StreamResampler(8000, 16000)
    out = run_stream(rs, tone(300, 8000, 0.5), 1600)
    assert len(out) // 2 == 8000 + rs.delay_out_samples


def test_24k_to_8k_thirds() -> None:
    rs = StreamResampler(24000, 8000)
    out = run_stream(rs, tone(300, 24000, 0.5), 4800)
    assert len(out) // 2 == 4000 + rs.delay_out_samples


@pytest.mark.parametrize(
    ("in_rate", "out_rate", "chunk_ms"),
    [
        (8000, 16000, 20),
        (8000, 16000, 100),
        (24000, 8000, 20),
        (24000, 8000, 40),
        (16000, 24000, 20),
    ],
)
def test_every_chunk_gives_its_share_at_once(in_rate: int, out_rate: int, chunk_ms: int) -> None:
    # No blocks: 20 ms in -> 20 ms out from the very first chunk (soxr's streaming "HQ" returned
    # nothing for the first 100 ms and then whole blocks: the caller waited for them).
    rs = StreamResampler(in_rate, out_rate)
    pcm = tone(700, in_rate, 1.0)
    step = in_rate * chunk_ms // 1000 * 2
    sizes = {len(rs.process(pcm[i : i + step])) for i in range(0, len(pcm), step)}
    assert sizes == {out_rate * chunk_ms // 1000 * 2}


def test_odd_chunks_give_their_share_to_the_sample() -> None:
    # chunk sizes that do not divide the ratio: each output is due as soon as its last input
    # arrives, so the running total never falls a sample behind the exact ratio
    rs = StreamResampler(24000, 8000)
    pcm = tone(500, 24000, 0.5)
    got = fed = 0
    for size in (301, 7, 1, 2, 960, 333, 5):
        for i in range(3):
            got += len(rs.process(pcm[(fed + i) * 2 : (fed + i) * 2 + size * 2])) // 2
        fed += 3 * size
        assert got == -(-fed // 3)


@pytest.mark.parametrize(("in_rate", "out_rate"), [(8000, 16000), (24000, 8000), (16000, 24000)])
def test_algorithmic_delay_is_small_and_where_it_says(in_rate: int, out_rate: int) -> None:
    rs = StreamResampler(in_rate, out_rate)
    assert 0 < rs.delay_ms <= 2.0
    # a click at input sample 0 peaks at the stated delay in the output
    click = np.zeros(in_rate // 10, dtype="<i2")
    click[0] = 20_000
    out = samples(rs.process(click.tobytes()))
    assert int(np.argmax(np.abs(out))) == rs.delay_out_samples
    assert rs.delay_out_samples == round(rs.delay_ms * out_rate / 1000)


@pytest.mark.parametrize(("in_rate", "out_rate"), [(8000, 16000), (24000, 8000)])
def test_1khz_sine_keeps_its_frequency(in_rate: int, out_rate: int) -> None:
    out = run_stream(StreamResampler(in_rate, out_rate), tone(1000, in_rate, 1.0), in_rate // 5)
    assert dominant_freq(out, out_rate) == pytest.approx(1000, abs=5)
    assert zero_crossing_freq(out, out_rate) == pytest.approx(1000, rel=0.01)
    # level survives too (a 1 kHz tone is well inside both pass-bands)
    assert rms(out) == pytest.approx(10_000 / np.sqrt(2), rel=0.05)


def test_downsampling_removes_content_above_new_nyquist() -> None:
    # 6 kHz cannot exist at 8 kHz: the anti-alias filter must remove it, not fold it to 2 kHz
    out = run_stream(StreamResampler(24000, 8000), tone(6000, 24000, 0.5), 4800)
    assert rms(out[800:-800]) < 100


@pytest.mark.parametrize(("in_rate", "out_rate"), [(8000, 16000), (24000, 8000), (16000, 24000)])
def test_chunked_equals_one_shot(in_rate: int, out_rate: int) -> None:
    pcm = tone(700, in_rate, 1.0) + tone(1300, in_rate, 0.5)
    whole = run_stream(StreamResampler(in_rate, out_rate), pcm, len(pcm))
    chunked = run_stream(StreamResampler(in_rate, out_rate), pcm, in_rate * 2 // 10)
    assert abs(len(whole) - len(chunked)) <= 8
    n = min(len(whole), len(chunked)) // 2
    a, b = samples(whole)[:n], samples(chunked)[:n]
    assert np.corrcoef(a, b)[0, 1] > 0.999
    assert np.max(np.abs(a - b)) <= 64


def test_odd_sized_chunks_still_continuous() -> None:
    # chunk sizes that do not divide the ratio evenly (e.g. 150 samples at 24k -> 8k)
    pcm = tone(500, 24000, 0.5)
    whole = run_stream(StreamResampler(24000, 8000), pcm, len(pcm))
    odd = run_stream(StreamResampler(24000, 8000), pcm, 300)
    n = min(len(whole), len(odd)) // 2
    assert abs(len(whole) - len(odd)) <= 8
    assert np.corrcoef(samples(whole)[:n], samples(odd)[:n])[0, 1] > 0.999


def test_flush_returns_tail_and_resampler_keeps_working() -> None:
    rs = StreamResampler(8000, 16000)
    pcm = tone(400, 8000, 0.3)
    first = rs.process(pcm)
    tail = rs.flush()
    assert len(first) // 2 == 4800  # every input sample's share, at once
    assert len(tail) // 2 == rs.delay_out_samples > 0  # the filter's delay line
    # after a flush the next signal starts clean and gets the same treatment
    again = rs.process(pcm) + rs.flush()
    assert again == first + tail


def test_flush_twice_is_harmless() -> None:
    rs = StreamResampler(24000, 8000)
    rs.process(tone(400, 24000, 0.1))
    rs.flush()
    assert rs.flush() == b""


def test_reset_forgets_buffered_samples() -> None:
    pcm = tone(400, 8000, 0.2)
    fresh = StreamResampler(8000, 16000)
    expected = fresh.process(pcm)

    rs = StreamResampler(8000, 16000)
    rs.process(tone(2000, 8000, 0.2, amp=30_000))
    rs.reset()
    assert rs.process(pcm) == expected


def test_output_is_int16_bytes() -> None:
    out = StreamResampler(8000, 24000).process(tone(1000, 8000, 0.1, amp=32_000))
    assert isinstance(out, bytes)
    assert len(out) % 2 == 0
    x = np.frombuffer(out, dtype="<i2")
    assert x.max() <= 32767
    assert x.min() >= -32768


def test_duration_ms() -> None:
    assert duration_ms(16000, 8000) == 1000.0
    assert duration_ms(3200, 16000) == 100.0
    assert duration_ms(4800, 24000) == 100.0
    assert duration_ms(0, 8000) == 0.0
    assert duration_ms(len(silence(250, 16000)), 16000) == 250.0


def test_silence() -> None:
    assert silence(100, 8000) == bytes(1600)
    assert len(silence(20, 16000)) == 640
    assert len(silence(100, 24000)) == 4800
    assert silence(0, 8000) == b""
    assert rms(silence(50, 8000)) == 0.0


def test_rms() -> None:
    assert rms(b"") == 0.0
    assert rms(b"\x01") == 0.0
    assert rms(np.full(100, 1000, dtype="<i2").tobytes()) == pytest.approx(1000.0)
    assert rms(np.full(100, -32768, dtype="<i2").tobytes()) == pytest.approx(32768.0)
    assert rms(tone(1000, 8000, 1.0, amp=10_000)) == pytest.approx(10_000 / np.sqrt(2), rel=0.01)
    square = np.tile(np.array([500, -500], dtype="<i2"), 50).tobytes()
    assert rms(square) == pytest.approx(500.0)


def test_full_scale_overshoot_is_clipped_not_wrapped() -> None:
    # a full-scale square wave rings above int16 through any band-limiting filter
    square = np.tile(np.array([32767] * 8 + [-32768] * 8, dtype="<i2"), 200).tobytes()
    for in_rate, out_rate in ((8000, 16000), (24000, 8000)):
        out = np.frombuffer(StreamResampler(in_rate, out_rate).process(square), dtype="<i2")
        # wrapped samples would flip sign next to a full-scale neighbour
        assert np.max(np.abs(np.diff(out.astype(np.int32)))) < 65535
        assert out.max() == 32767 or out.min() == -32768


def test_previous_soxr_stream_stays_selectable() -> None:
    # only for before/after measurements (RECEPTIONIST_RESAMPLER=soxr-hq)
    rs = StreamResampler(8000, 16000, impl="soxr-hq")
    out = run_stream(rs, tone(1000, 8000, 1.0), 1600)
    assert dominant_freq(out, 16000) == pytest.approx(1000, abs=5)
    with pytest.raises(ValueError, match="unknown resampler"):
        StreamResampler(8000, 16000, impl="nope")
