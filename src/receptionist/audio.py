"""PCM helpers for the hot path: streaming resampling and levels.

All audio here is 16-bit little-endian mono PCM in `bytes`. Resampling keeps filter state between
chunks, so a call's audio is resampled as one continuous signal rather than as 100 ms islands with
clicks at every edge.

Why our own resampler: soxr's streaming API (every quality but the cubic "QQ") works on internal
blocks, so at 8 -> 16 kHz "HQ" returns nothing for the first 100 ms chunk and then runs a chunk
behind, and at 24 -> 8 kHz it releases output in uneven blocks. The caller heard that as 100-200 ms
of extra wait before every answer. `StreamResampler` is a rational polyphase FIR (Kaiser-windowed
sinc, linear phase): every chunk in gives its proportional share out at once, and the only delay
is the filter's group delay (`delay_ms`, ~1.8 ms for the telephone rates). The rates on a call are
small integer ratios (8k->16k = 2/1, 24k->8k = 1/3, 16k->24k = 3/2, ...), so each output sample
is one short dot product; numpy does all outputs of one phase in one matrix-vector product.

Quality (tests/unit/test_resample_quality.py, bench figure `resample_quality`): a 100-3400 Hz
sweep through the stream matches soxr's offline "VHQ" within ~60 dB SNR; images and aliases above
the band are attenuated by >= 70 dB beyond the transition band (centred on the lower Nyquist,
+-15 % of it).

`RECEPTIONIST_RESAMPLER=soxr-hq` selects the previous soxr "HQ" stream instead (for before/after
measurements only); it is read once, when this module is imported.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import soxr

#: Stop-band attenuation of the anti-image/anti-alias filter (dB).
STOPBAND_DB = 70.0
#: Half the transition band, as a fraction of the lower Nyquist frequency: at 8 kHz the filter
#: passes up to 3400 Hz and stops from 4600 Hz (what folds back lands above the telephone band).
TRANSITION_HALF = 0.15
#: Outputs per block of the block matrix (rounded to a multiple of the up factor).
BLOCK_OUTPUTS = 32

_IMPL_ENV = "RECEPTIONIST_RESAMPLER"
IMPLEMENTATION = os.environ.get(_IMPL_ENV, "fir").strip().lower() or "fir"
if IMPLEMENTATION not in ("fir", "soxr-hq"):
    raise ValueError(f"{_IMPL_ENV} must be 'fir' or 'soxr-hq', not {IMPLEMENTATION!r}")


_EMPTY_I16 = np.zeros(0, dtype="<i2")
_I16 = np.dtype("<i2")
# clip bounds shared by every stream (read-only; 32 KB for the module, nothing per call)
_CLIP_N = 4096
_HI = np.full(_CLIP_N, 32767.0, dtype=np.float32)
_LO = np.full(_CLIP_N, -32768.0, dtype=np.float32)
_ZEROS = np.zeros(0, dtype=np.float32)


@dataclass(frozen=True, slots=True)
class _Design:
    up: int
    down: int
    taps: int  # per phase
    block: int  # outputs per block
    block_step: int  # inputs per block
    matrix: np.ndarray  # [rows, block] float32
    delay_out_samples: int


def _kaiser_beta(atten_db: float) -> float:
    if atten_db > 50:
        return 0.1102 * (atten_db - 8.7)
    if atten_db >= 21:
        return 0.5842 * (atten_db - 21) ** 0.4 + 0.07886 * (atten_db - 21)
    return 0.0


@lru_cache(maxsize=32)
def _design(in_rate: int, out_rate: int) -> _Design:
    """The filter for one rate pair, shared (read-only) by every stream with those rates, so a
    call costs its few buffers only."""
    g = math.gcd(in_rate, out_rate)
    up, down = out_rate // g, in_rate // g
    fs = in_rate * up  # the filter runs at the common (upsampled) rate
    nyq = min(in_rate, out_rate) / 2.0
    tw = 2 * TRANSITION_HALF * nyq  # full transition width, Hz
    n = math.ceil((STOPBAND_DB - 7.95) / (2.285 * 2 * math.pi * tw / fs)) + 1
    half = -(-(n - 1) // 2)
    # a group delay of a whole number of output samples: the delay is exact and easy to align
    half = -(-half // down) * down
    n = 2 * half + 1
    t = np.arange(n) - half
    fc = nyq / fs  # cycles per sample
    h = 2 * fc * np.sinc(2 * fc * t) * np.kaiser(n, _kaiser_beta(STOPBAND_DB))
    h *= up / h.sum()  # unity gain at DC after zero-stuffing
    k = -(-n // up)
    padded = np.zeros(k * up)
    padded[:n] = h
    # phase r uses h[r], h[r + up], ...; reversed so that a window of inputs, oldest first,
    # dots it
    phases = padded.reshape(k, up).T[:, ::-1]
    # One block of B outputs (B a multiple of `up`) as one matrix: column j holds output j's
    # taps at the rows of the inputs it reads. A chunk's outputs are then a few rows of inputs
    # times this matrix: one BLAS call instead of a Python loop or a slow strided product.
    b = max(up, BLOCK_OUTPUTS // up * up)
    rows = (b - 1) * down // up + k
    mat = np.zeros((rows, b))
    for j in range(b):
        base = j * down // up
        mat[base : base + k, j] = phases[j * down % up]
    return _Design(
        up=up,
        down=down,
        taps=k,
        block=b,
        block_step=b * down // up,
        matrix=np.ascontiguousarray(mat, dtype=np.float32),
        delay_out_samples=half // down,
    )


class _PolyphaseStream:
    """Rational polyphase FIR over one continuous int16 stream (see the module docstring).

    State: `_buf` holds the inputs from the window start of output `_ma` (the last output index
    that is a multiple of `up`, so block rows line up with the matrix), and `_skip` outputs from
    `_ma` on were already returned.
    """

    __slots__ = (
        "_block",
        "_buf",
        "_down",
        "_fed",
        "_ma",
        "_mat",
        "_rows",
        "_skip",
        "_step",
        "_taps",
        "_up",
        "delay_out_samples",
    )

    def __init__(self, in_rate: int, out_rate: int) -> None:
        d = _design(in_rate, out_rate)
        # the design's fields copied to slots: this runs ~35 times per call-second
        self._up, self._down, self._taps = d.up, d.down, d.taps
        self._block, self._step, self._mat = d.block, d.block_step, d.matrix
        self._rows = d.matrix.shape[0]
        self.delay_out_samples = d.delay_out_samples
        self._buf = _ZEROS
        self._ma = 0
        self._skip = 0
        self._fed = False
        self.reset()

    def reset(self) -> None:
        # taps-1 zeros of history before the first sample: the filter starts from silence
        self._buf = np.zeros(self._taps - 1, dtype=np.float32)
        self._ma = 0
        self._skip = 0
        self._fed = False  # nothing owed by the delay line

    def process(self, x: np.ndarray) -> np.ndarray:
        up, down, ma = self._up, self._down, self._ma
        self._fed = True
        buf = np.concatenate((self._buf, x), dtype=np.float32)
        # the buffer starts at the window of output `ma`: input base(ma) - (taps - 1)
        first = ma * down // up - (self._taps - 1)
        m_end = -(-(first + len(buf)) * up // down)  # outputs whose newest input has arrived
        n = m_end - ma
        skip = self._skip
        if n <= skip:
            self._buf = buf
            return _EMPTY_I16
        nb, rem = divmod(n, self._block)
        mat = self._mat
        if nb:
            rows = np.ndarray((nb, self._rows), np.float32, buf, 0, (self._step * 4, 4))
            y = np.dot(rows, mat).ravel()
            if rem:
                off = nb * self._step
                used = (rem - 1) * down // up + self._taps
                y = np.concatenate((y, buf[off : off + used] @ mat[:used, :rem]))
        else:
            used = (rem - 1) * down // up + self._taps
            y = buf[:used] @ mat[:used, :rem]
        if skip:
            y = y[skip:]
        ma_next = m_end - m_end % up
        self._skip = m_end - ma_next
        self._ma = ma_next
        # keep only the inputs the next output needs (a copy: the chunk itself is let go)
        self._buf = buf[(ma_next - ma) * down // up :].copy()
        np.rint(y, out=y)
        # a full-scale input can overshoot int16 through the filter's ripple: clip (in place,
        # always: cheaper than finding out whether it is needed). Against arrays of the same
        # length numpy takes its fast contiguous loop; a scalar bound is ~2x slower here.
        n_y = len(y)
        if n_y <= _CLIP_N:
            np.minimum(y, _HI[:n_y], out=y)
            np.maximum(y, _LO[:n_y], out=y)
        else:
            np.minimum(y, 32767.0, out=y)
            np.maximum(y, -32768.0, out=y)
        return y.astype(_I16)

    def tail(self) -> np.ndarray:
        """The filter's delay line: the outputs still owed for the input so far."""
        owed = self.delay_out_samples
        if not self._fed:
            return _EMPTY_I16
        need = -(-owed * self._down // self._up)  # zeros that push `owed` outputs out
        return self.process(np.zeros(need, dtype=np.float32))[:owed]


class StreamResampler:
    """Resamples one continuous stream. When rates match it is a no-op that costs nothing.

    `process` returns, for every chunk, its share of output at once (a 20 ms chunk in gives
    20 ms out, to the sample over a stream); the output lags the input by `delay_ms`.
    """

    __slots__ = ("_fir", "_stream", "in_rate", "out_rate")

    def __init__(self, in_rate: int, out_rate: int, impl: str | None = None) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        impl = impl or IMPLEMENTATION
        self._fir: _PolyphaseStream | None = None
        self._stream: soxr.ResampleStream | None = None
        if in_rate == out_rate:
            return
        if impl == "soxr-hq":
            self._stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality="HQ")
        elif impl == "fir":
            self._fir = _PolyphaseStream(in_rate, out_rate)
        else:
            raise ValueError(f"unknown resampler {impl!r}")

    @property
    def delay_ms(self) -> float:
        """Algorithmic delay: the filter's group delay (0 when the rates match)."""
        if self._fir is not None:
            return self._fir.delay_out_samples * 1000.0 / self.out_rate
        return 0.0 if self._stream is None else float("nan")  # soxr: block-dependent

    @property
    def delay_out_samples(self) -> int:
        return 0 if self._fir is None else self._fir.delay_out_samples

    def process(self, pcm: bytes) -> bytes:
        if not pcm:
            return pcm
        if self._fir is not None:
            x = np.frombuffer(pcm, dtype="<i2", count=len(pcm) >> 1)
            return self._fir.process(x).tobytes()
        if self._stream is None:
            return pcm
        out = self._stream.resample_chunk(np.frombuffer(pcm, dtype="<i2"))
        return out.tobytes()

    def flush(self) -> bytes:
        """Drain the filter's delay line (end of a turn), then start a new signal."""
        if self._fir is not None:
            tail = self._fir.tail().tobytes()
        elif self._stream is not None:
            tail = self._stream.resample_chunk(np.zeros(0, dtype="<i2"), last=True).tobytes()
        else:
            return b""
        self.reset()
        return tail

    def reset(self) -> None:
        """Forget buffered samples (barge-in): the next chunk starts a new signal."""
        if self._fir is not None:
            self._fir.reset()
        elif self._stream is not None:
            self._stream = soxr.ResampleStream(
                self.in_rate, self.out_rate, 1, dtype="int16", quality="HQ"
            )


def duration_ms(pcm_len: int, sample_rate: int) -> float:
    return pcm_len * 500.0 / sample_rate


def rms(pcm: bytes) -> float:
    """RMS on the int16 scale (0.0 for empty input; a trailing odd byte is ignored)."""
    n = len(pcm) // 2
    if n == 0:
        return 0.0
    x = np.frombuffer(pcm, dtype="<i2", count=n).astype(np.float32)
    return float(np.sqrt(np.dot(x, x) / n))


def silence(ms: float, sample_rate: int) -> bytes:
    """``ms`` milliseconds of digital silence."""
    return bytes(2 * round(ms * sample_rate / 1000.0))


# --- G.711 mu-law: a compact store for audio kept in memory ------------------------------------
# 8 bits a sample with a logarithmic step (the telephone network's own coding, so a call's audio
# loses nothing a caller could hear): half the bytes of 16-bit PCM. Both directions are table
# lookups (64 KB and 512 B, built once per process), a few microseconds a 100 ms frame.

_ULAW_BIAS = 0x84
_ULAW_CLIP = 32635


@lru_cache(maxsize=1)
def _ulaw_tables() -> tuple[np.ndarray, np.ndarray]:
    x = np.arange(-32768, 32768, dtype=np.int32)
    sign = np.where(x < 0, 0x80, 0)
    mag = np.minimum(np.abs(x), _ULAW_CLIP) + _ULAW_BIAS
    exponent = np.floor(np.log2(mag)).astype(np.int32) - 7  # mag in [132, 32767]: 0..7
    mantissa = (mag >> (exponent + 3)) & 0x0F
    codes = (~(sign | (exponent << 4) | mantissa)) & 0xFF
    # indexed by the sample's bit pattern read as uint16 (0..32767, then -32768..-1)
    encode = np.roll(codes.astype(np.uint8), -32768)
    c = ~np.arange(256, dtype=np.int32) & 0xFF
    value = (((c & 0x0F) << 3) + _ULAW_BIAS << ((c >> 4) & 0x07)) - _ULAW_BIAS
    decode = np.where(c & 0x80, -value, value).astype("<i2")
    return encode, decode


def ulaw_encode(pcm: bytes, step: int = 1) -> bytes:
    """16-bit PCM to mu-law, keeping every `step`-th sample (2: half the rate, for audio that
    carries nothing above a quarter of its rate, e.g. 8 kHz telephone audio upsampled to 16)."""
    samples = np.frombuffer(pcm, dtype=np.uint16, count=len(pcm) >> 1)
    return _ulaw_tables()[0][samples[::step]].tobytes()


def ulaw_decode(data: bytes) -> bytes:
    """mu-law back to 16-bit PCM."""
    return _ulaw_tables()[1][np.frombuffer(data, dtype=np.uint8)].tobytes()
