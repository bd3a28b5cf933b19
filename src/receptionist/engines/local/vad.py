"""Turn detection for one call: where the caller's utterances start and end.

The local engine hears the caller as a stream of 8 kHz 16-bit PCM chunks of any size. It needs
two things from that stream, as early as possible:

* ``SpeechStarted`` as soon as the caller is clearly talking, to stop the agent's audio
  (barge-in). "Clearly" means ``min_speech_ms`` of audio that is at least 3/4 voiced, with no
  unvoiced gap longer than ``max_gap_ms``, so a click, a cough or a door is not a barge-in,
  while the short quiet stretches inside real speech do not delay it;
* ``Utterance`` with the caller's audio once they have been quiet for ``end_silence_ms`` (end of
  turn), to send to speech-to-text. A caller who talks without pausing is cut into utterances of
  at most ``max_utterance_ms``, preferably at a short pause near the limit, so speech-to-text
  never waits for an endless turn;
* ``Pause`` once the caller has been quiet for ``pause_ms`` inside a turn (0: never), with the
  utterance as it would end if the caller said nothing more, so the engine can start
  transcribing it before the end of the turn is certain. With ``pause_ms >= post_roll_ms`` its
  audio is exactly the final ``Utterance``'s when the caller stays quiet.

No caller speech is discarded. A word too short to confirm a barge-in ("Bye.", "No." said
quickly: ``min_word_ms`` voiced, less than ``min_speech_ms``) still makes an ``Utterance`` once
``end_silence_ms`` of quiet follows it, with no ``SpeechStarted`` before it: it never stops the
agent, but it is heard. Such a word just before a confirmed turn ("Sorry, | this Sunday ...",
the pause at the comma resetting the confirmation) opens that turn, so its audio starts with it.
The rest of a cut turn is kept when it has ``min_word_ms`` of speech.

Every ``SpeechStarted`` is followed by at least one ``Utterance`` (at the end of the turn, at a
cut or at ``flush()``), so the engine can treat the pair as one turn; a short word's
``Utterance`` comes alone.

A frame is voiced when its level is above ``energy_floor`` (on the int16 RMS scale, see
``receptionist.audio.rms``) *and* WebRTC's VAD says so. WebRTC's VAD hears speech down to very low
levels (Piper speech at RMS ~80 still counts), so the floor is what keeps very quiet line noise
out, whatever the VAD makes of it; below the floor the VAD is not even called, which makes
silence cheaper than speech. The VAD in turn rejects steady non-speech that an energy gate would
pass: tones, mains hum and moderate noise. Loud noise (white noise at RMS ~1000, hum at ~3000)
does still make turns; speech-to-text's no-speech filter turns those into empty text.

The detector is synchronous, allocation-light and per call (WebRTC's VAD keeps state between
frames): it runs on the event loop. Times are milliseconds of audio since the first byte fed.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from receptionist.audio import rms
from receptionist.engines.local.models import require_module

__all__ = [
    "Pause",
    "SpeechStarted",
    "TurnDetector",
    "TurnEvent",
    "Utterance",
    "VadSettings",
]

_VALID_RATES = (8000, 16000, 32000, 48000)
_VALID_FRAME_MS = (10, 20, 30)


@dataclass(frozen=True, slots=True)
class VadSettings:
    """Knobs of the turn detector; the defaults suit telephone speech at 8 kHz."""

    sample_rate: int = 8000
    #: WebRTC VAD mode: 0 is the most willing to call audio speech, 3 the least.
    aggressiveness: int = 2
    #: Analysis frame; WebRTC's VAD accepts 10, 20 or 30 ms.
    frame_ms: int = 20
    #: Quiet time that ends a turn.
    end_silence_ms: int = 500
    #: Quiet time inside a turn that reports a ``Pause`` (0: none); less than ``end_silence_ms``.
    pause_ms: int = 0
    #: Speech (at least 3/4 voiced) needed to confirm a turn (and a barge-in).
    min_speech_ms: int = 250
    #: Voiced time that still makes a turn, without barge-in, once the caller is quiet: "Bye."
    #: (Piper: 240 ms voiced) is heard; a click or a 150 ms burst of noise is not.
    min_word_ms: int = 200
    #: Unvoiced time allowed inside the speech being confirmed before confirmation starts over.
    max_gap_ms: int = 100
    #: Audio kept before the first voiced frame (soft word onsets the VAD is late for).
    pre_roll_ms: int = 200
    #: Audio kept after the last voiced frame (soft word endings).
    post_roll_ms: int = 200
    #: A turn longer than this is cut; the rest continues as the next utterance.
    max_utterance_ms: int = 15_000
    #: Frames with a lower RMS (int16 scale) are unvoiced whatever the VAD says.
    energy_floor: float = 100.0  # about -50 dBFS: line noise, not a quiet caller

    def __post_init__(self) -> None:
        if self.sample_rate not in _VALID_RATES:
            raise ValueError(f"sample_rate must be one of {_VALID_RATES}")
        if self.frame_ms not in _VALID_FRAME_MS:
            raise ValueError(f"frame_ms must be one of {_VALID_FRAME_MS}")
        if not 0 <= self.aggressiveness <= 3:
            raise ValueError("aggressiveness must be 0..3")
        if self.min_speech_ms < self.frame_ms:
            raise ValueError("min_speech_ms must be at least one frame")
        if not self.frame_ms <= self.min_word_ms <= self.min_speech_ms:
            raise ValueError("min_word_ms must be from one frame to min_speech_ms")
        if self.end_silence_ms < self.frame_ms:
            raise ValueError("end_silence_ms must be at least one frame")
        if self.max_utterance_ms < 2 * self.min_speech_ms:
            raise ValueError("max_utterance_ms must be at least twice min_speech_ms")
        if self.pause_ms and not self.frame_ms <= self.pause_ms < self.end_silence_ms:
            raise ValueError("pause_ms must be 0 or from one frame to below end_silence_ms")
        for name in ("max_gap_ms", "pre_roll_ms", "post_roll_ms", "pause_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.energy_floor < 0:
            raise ValueError("energy_floor must not be negative")


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The caller is talking (barge-in). ``confirmed_ms - started_ms`` is the detection delay."""

    started_ms: int  # first voiced frame of the speech
    confirmed_ms: int  # end of the frame that confirmed it (now, when the event is returned)


@dataclass(frozen=True, slots=True)
class Utterance:
    """One turn (or one piece of a long turn) of the caller's speech.

    ``started_ms``/``ended_ms`` bound the speech itself (first and last voiced frame; for the
    rest of a cut turn, ``started_ms`` is where the cut was, and a cut piece ends there). ``pcm``
    covers a little more: up to ``pre_roll_ms`` before and ``post_roll_ms`` after, so that
    speech-to-text hears soft onsets and endings. ``cut`` is set when ``max_utterance_ms`` ended
    the piece rather than the caller's silence.
    """

    pcm: bytes = field(repr=False)
    started_ms: int
    ended_ms: int
    cut: bool

    @property
    def duration_ms(self) -> int:
        return self.ended_ms - self.started_ms


@dataclass(frozen=True, slots=True)
class Pause:
    """The caller has been quiet for ``pause_ms`` inside a turn: ``utterance`` is the turn as it
    stands (trimmed as it would be at its end). If the caller stays quiet, the turn's
    ``Utterance`` follows with the same audio; if they speak on, it will have more."""

    utterance: Utterance
    at_ms: int  # when the pause was reported (end of the frame that made it)


TurnEvent = SpeechStarted | Pause | Utterance


def _make_vad(aggressiveness: int) -> Any:
    # imported here: the package must import without the `local` extra
    webrtcvad = require_module("webrtcvad")
    return webrtcvad.Vad(aggressiveness)


class TurnDetector:
    """Feeds on one call's audio; returns turn events. Not thread-safe; one per call."""

    def __init__(self, settings: VadSettings | None = None) -> None:
        s = settings or VadSettings()
        self.settings = s
        self._vad = _make_vad(s.aggressiveness)
        self._frame_bytes = 2 * s.sample_rate * s.frame_ms // 1000
        fm = s.frame_ms
        self._pre_frames = -(-s.pre_roll_ms // fm)
        self._post_frames = -(-s.post_roll_ms // fm)
        self._min_speech_frames = -(-s.min_speech_ms // fm)
        self._min_word_frames = -(-s.min_word_ms // fm)
        self._max_gap_frames = s.max_gap_ms // fm
        self._end_frames = -(-s.end_silence_ms // fm)
        self._pause_frames = -(-s.pause_ms // fm) if s.pause_ms else 0
        self._max_frames = s.max_utterance_ms // fm
        # near the limit, cut at the first unvoiced frame rather than mid-word
        self._soft_max_frames = max(self._min_speech_frames, self._max_frames * 9 // 10)
        self._pending = bytearray()
        self._frame_index = 0  # frames analysed so far: the clock, never reset
        self.reset()

    # --- state -------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything except the clock: the next frame starts with no turn open."""
        self._pending.clear()
        # idle: recent frames (pre-roll, a short word and the silence after it, plus the
        # longest speech being confirmed, gaps included)
        span = self._min_speech_frames * (self._max_gap_frames + 1)
        self._recent: deque[bytes] = deque(maxlen=self._pre_frames + self._end_frames + span)
        self._cand_start = -1  # frame index of the first voiced frame, -1 when none
        self._cand_gap = 0  # unvoiced frames since the candidate's last voiced one
        # idle voiced frames not yet confirmed as a turn, up to end_silence apart: a short word
        self._word_start = -1  # frame index of its first voiced frame, -1 when none
        self._word_last = -1  # ... and of its last
        self._word_voiced = 0
        self._window: deque[bool] = deque(maxlen=self._min_speech_frames)  # last frames voiced?
        self._window_voiced = 0
        # in speech
        self._in_speech = False
        self._frames: list[bytes] = []  # audio of the open utterance
        self._first_frame = 0  # frame index of self._frames[0]
        self._speech_start = 0  # frame index of the first voiced frame
        self._last_voiced = 0  # frame index of the last voiced frame
        self._voiced = 0  # voiced frames in the open utterance
        self._after_cut = False  # the open utterance continues a cut one
        self._silence = 0  # unvoiced frames since the last voiced one

    @property
    def in_speech(self) -> bool:
        """Whether a turn is open (speech confirmed, end not reached)."""
        return self._in_speech

    @property
    def position_ms(self) -> int:
        """Audio analysed so far (whole frames)."""
        return self._frame_index * self.settings.frame_ms

    # --- feeding -----------------------------------------------------------------------------

    def feed(self, pcm: bytes) -> list[TurnEvent]:
        """Analyse ``pcm`` (any length, continuing the stream); return events in order."""
        events: list[TurnEvent] = []
        pending = self._pending
        pending += pcm
        fb = self._frame_bytes
        n = len(pending) // fb
        if n == 0:
            return events
        for i in range(n):
            self._step(bytes(pending[i * fb : (i + 1) * fb]), events)
        del pending[: n * fb]
        return events

    def flush(self) -> list[TurnEvent]:
        """End of the call: close the open turn, if any. A partial last frame is dropped."""
        events: list[TurnEvent] = []
        if self._in_speech and self._worth_emitting():
            events.append(self._close(cut=False, trailing=self._silence))
        elif not self._in_speech and self._word_start >= 0:
            self._end_word(self._frame_index - 1, events)
        self.reset()
        return events

    # --- one frame ---------------------------------------------------------------------------

    def _is_voiced(self, frame: bytes) -> bool:
        if rms(frame) < self.settings.energy_floor:
            return False
        return bool(self._vad.is_speech(frame, self.settings.sample_rate))

    def _step(self, frame: bytes, events: list[TurnEvent]) -> None:
        index = self._frame_index
        self._frame_index = index + 1
        voiced = self._is_voiced(frame)
        if self._in_speech:
            self._speech_frame(frame, index, voiced, events)
        else:
            self._idle_frame(frame, index, voiced, events)

    def _idle_frame(self, frame: bytes, index: int, voiced: bool, events: list[TurnEvent]) -> None:
        self._recent.append(frame)
        window = self._window
        if len(window) == self._min_speech_frames:
            self._window_voiced -= window[0]
        window.append(voiced)
        self._window_voiced += voiced
        if voiced:
            if self._word_start < 0:
                self._word_start = index
            self._word_last = index
            self._word_voiced += 1
            if self._cand_start < 0:
                self._cand_start = index
            self._cand_gap = 0
            # confirmed: the last min_speech_ms, all since the candidate began, 3/4 voiced
            if (
                index + 1 - self._cand_start >= self._min_speech_frames
                and 4 * self._window_voiced >= 3 * self._min_speech_frames
            ):
                self._open(index, events)
        else:
            if self._cand_start >= 0:
                self._cand_gap += 1
                if self._cand_gap > self._max_gap_frames:
                    self._cand_start, self._cand_gap = -1, 0
            if self._word_start >= 0 and index - self._word_last >= self._end_frames:
                self._end_word(index, events)

    def _end_word(self, index: int, events: list[TurnEvent]) -> None:
        """Quiet after voiced frames that never confirmed a turn: a short word is a turn of its
        own (no barge-in); less is a click or a burst of noise."""
        start, last, voiced = self._word_start, self._word_last, self._word_voiced
        self._word_start, self._word_last, self._word_voiced = -1, -1, 0
        if voiced < self._min_word_frames:
            return
        recent = list(self._recent)
        oldest = index + 1 - len(recent)  # frame index of recent[0]
        first = max(oldest, start - self._pre_frames)
        end = min(index, last + self._post_frames)
        fm = self.settings.frame_ms
        events.append(
            Utterance(
                pcm=b"".join(recent[first - oldest : end + 1 - oldest]),
                started_ms=start * fm,
                ended_ms=(last + 1) * fm,
                cut=False,
            )
        )

    def _open(self, index: int, events: list[TurnEvent]) -> None:
        fm = self.settings.frame_ms
        if 0 <= self._word_start < self._cand_start:
            # a word before a pause that reset the confirmation ("Sorry, | this Sunday"): the
            # turn starts with it
            self._cand_start = self._word_start
        self._word_start, self._word_last, self._word_voiced = -1, -1, 0
        first = max(0, self._cand_start - self._pre_frames, index + 1 - len(self._recent))
        keep = index + 1 - first
        self._frames = list(self._recent)[-keep:]
        self._recent.clear()
        self._first_frame = first
        self._speech_start = self._cand_start
        self._last_voiced = index
        self._voiced = self._window_voiced
        self._after_cut = False
        self._silence = 0
        self._in_speech = True
        self._cand_start, self._cand_gap = -1, 0
        self._window.clear()
        self._window_voiced = 0
        events.append(
            SpeechStarted(started_ms=self._speech_start * fm, confirmed_ms=(index + 1) * fm)
        )

    def _speech_frame(
        self, frame: bytes, index: int, voiced: bool, events: list[TurnEvent]
    ) -> None:
        self._frames.append(frame)
        if voiced:
            self._voiced += 1
            self._silence = 0
            self._last_voiced = index
        else:
            self._silence += 1
            if self._silence >= self._end_frames:
                if self._worth_emitting():
                    events.append(self._close(cut=False, trailing=self._silence))
                self._back_to_idle()
                return
            if self._silence == self._pause_frames and self._worth_emitting():
                pause = self._close(cut=False, trailing=self._silence)
                events.append(Pause(utterance=pause, at_ms=(index + 1) * self.settings.frame_ms))
        length = index + 1 - self._speech_start
        if length >= self._max_frames or (length >= self._soft_max_frames and not voiced):
            events.append(self._close(cut=True, trailing=0))
            self._continue_after_cut(index + 1)

    def _worth_emitting(self) -> bool:
        # a confirmed turn is always emitted (it was announced by SpeechStarted); the rest of a
        # cut turn when it holds at least a word
        return not self._after_cut or self._voiced >= self._min_word_frames

    def _close(self, cut: bool, trailing: int) -> Utterance:
        """The open utterance, ending ``post_roll`` after its last voiced frame."""
        fm = self.settings.frame_ms
        drop = max(0, trailing - self._post_frames)
        frames = self._frames[: len(self._frames) - drop] if drop else self._frames
        end = self._last_voiced + 1 if not cut else self._first_frame + len(self._frames)
        return Utterance(
            pcm=b"".join(frames),
            started_ms=self._speech_start * fm,
            ended_ms=end * fm,
            cut=cut,
        )

    def _back_to_idle(self) -> None:
        # the silent tail stays available as pre-roll for the next turn
        tail = self._frames[-self._pre_frames :] if self._pre_frames else []
        self._frames = []
        self._in_speech = False
        self._recent.clear()
        self._recent.extend(tail)

    def _continue_after_cut(self, next_index: int) -> None:
        # the caller is still talking: the next piece starts at the next frame, already
        # confirmed (no second SpeechStarted); a short or silent rest is dropped at its end
        self._frames = []
        self._first_frame = next_index
        self._speech_start = next_index
        self._last_voiced = next_index - 1
        self._voiced = 0
        self._silence = 0
        self._after_cut = True
