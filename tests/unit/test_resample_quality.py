"""Telephone-band quality of the streaming resampler, measured against an offline reference.

The reference is soxr's "VHQ" on the whole signal at once (no streaming, no chunk edges). The
streamed output is shifted by the resampler's stated delay and compared sample by sample, so
both the quality and the stated delay are checked: a wrong delay would cost the SNR.
"""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from receptionist.audio import StreamResampler

#: 100-3400 Hz: the telephone band.
SWEEP_HZ = (100.0, 3400.0)
MIN_SNR_DB = 60.0  # measured ~78-80 dB; a telephone channel (G.711) manages ~38 dB


def sweep(rate: int, seconds: float = 3.0, amp: float = 12_000.0) -> np.ndarray:
    """A linear sine sweep over the telephone band, int16."""
    t = np.arange(int(rate * seconds)) / rate
    f0, f1 = SWEEP_HZ
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))
    return np.round(amp * np.sin(phase)).astype("<i2")


def stream(rs: StreamResampler, x: np.ndarray, chunk_ms: int) -> np.ndarray:
    step = rs.in_rate * chunk_ms // 1000
    out = bytearray()
    for i in range(0, len(x), step):
        out += rs.process(x[i : i + step].tobytes())
    out += rs.flush()
    return np.frombuffer(bytes(out), dtype="<i2").astype(np.float64)


def snr_db(signal: np.ndarray, test: np.ndarray) -> float:
    err = test - signal
    return float(10 * np.log10(np.sum(signal**2) / np.sum(err**2)))


@pytest.mark.parametrize(
    ("in_rate", "out_rate", "chunk_ms"),
    [(8000, 16000, 100), (8000, 16000, 20), (24000, 8000, 40), (24000, 8000, 20)],
)
def test_sweep_matches_offline_vhq(in_rate: int, out_rate: int, chunk_ms: int) -> None:
    x = sweep(in_rate)
    ref = soxr.resample(x.astype(np.float64), in_rate, out_rate, quality="VHQ")
    rs = StreamResampler(in_rate, out_rate)
    y = stream(rs, x, chunk_ms)
    d = rs.delay_out_samples
    assert len(y) == len(ref) + d  # nothing lost, nothing added but the delay line
    y = y[d : d + len(ref)]
    edge = len(ref) // 20  # both filters start from silence: skip their start-up and tail
    assert snr_db(ref[edge:-edge], y[edge:-edge]) >= MIN_SNR_DB


def test_sweep_level_is_flat_across_the_band() -> None:
    # per 100 ms block of the sweep, the streamed level stays within 0.1 dB of the input's
    x = sweep(8000).astype(np.float64)
    rs = StreamResampler(24000, 8000)
    up = soxr.resample(x, 8000, 24000, quality="VHQ")  # the sweep as the model would send it
    y = stream(rs, np.round(up).astype("<i2"), 40)[rs.delay_out_samples :][: len(x)]
    blocks = slice(800, len(x) - 800)
    xb = x[blocks].reshape(-1, 800)
    yb = y[blocks].reshape(-1, 800)
    ratio_db = 20 * np.log10(np.sqrt((yb**2).mean(axis=1) / (xb**2).mean(axis=1)))
    assert np.max(np.abs(ratio_db)) < 0.1


@pytest.mark.parametrize("freq", [4700.0, 6000.0, 9000.0])
def test_no_alias_from_above_the_band(freq: float) -> None:
    # 24k -> 8k: anything above 4.6 kHz would fold into the band; it must be >= 60 dB down
    t = np.arange(24000) / 24000
    x = np.round(12_000 * np.sin(2 * np.pi * freq * t)).astype("<i2")
    y = stream(StreamResampler(24000, 8000), x, 40)[400:-400]
    assert np.sqrt(np.mean(y**2)) < 12_000 / np.sqrt(2) * 10 ** (-60 / 20)


@pytest.mark.parametrize("freq", [300.0, 1000.0, 3000.0, 3400.0])
def test_no_image_above_the_band(freq: float) -> None:
    # 8k -> 16k: zero-stuffing mirrors f to 8000 - f; the image must be >= 60 dB down
    t = np.arange(8000) / 8000
    x = np.round(12_000 * np.sin(2 * np.pi * freq * t)).astype("<i2")
    y = stream(StreamResampler(8000, 16000), x, 20)[800:-800]
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    freqs = np.fft.rfftfreq(len(y), 1 / 16000)
    tone = spec[np.argmin(np.abs(freqs - freq))]
    image = spec[np.argmin(np.abs(freqs - (8000 - freq)))]
    assert 20 * np.log10(image / tone) < -60
