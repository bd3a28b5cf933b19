"""PCM helpers for the hot path: streaming resampling and levels.

All audio here is 16-bit little-endian mono PCM in `bytes`. Resampling keeps filter state between
chunks (soxr's streaming API), so a call's audio is resampled as one continuous signal rather than
as 100 ms islands with clicks at every edge.
"""

from __future__ import annotations

import numpy as np
import soxr


class StreamResampler:
    """Resamples one continuous stream. When rates match it is a no-op that costs nothing."""

    __slots__ = ("_stream", "in_rate", "out_rate")

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream = (
            None
            if in_rate == out_rate
            else soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality="HQ")
        )

    def process(self, pcm: bytes) -> bytes:
        if self._stream is None or not pcm:
            return pcm
        out = self._stream.resample_chunk(np.frombuffer(pcm, dtype="<i2"))
        return out.tobytes()

    def flush(self) -> bytes:
        """Drain the filter's delay line (end of a turn)."""
        if self._stream is None:
            return b""
        tail = self._stream.resample_chunk(np.zeros(0, dtype="<i2"), last=True).tobytes()
        self.reset()
        return tail

    def reset(self) -> None:
        """Forget buffered samples (barge-in): the next chunk starts a new signal."""
        if self._stream is not None:
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
