"""Simulated caller: plays Exotel's side of a Voicebot stream against our bridge.

A real WebSocket client speaking the Exotel protocol (frames from `telephony.exotel`): it sends
`connected` and `start`, then streams the caller's audio as ~100 ms `media` frames without a break
(scripted synthetic speech or a WAV file, silence in between, as a phone line never stops sending),
and finally `stop`. On the receiving side it behaves like Exotel's player: agent `media` is queued
on a simulated playback clock (it "plays" in real time from when it arrives), `clear` drops what is
still queued, and each `mark` is echoed back once the audio queued before it has finished playing.

It measures what a caller experiences: greeting latency (start frame sent -> first agent audio),
per-turn response latency (caller's last voiced frame sent -> first agent audio of the reply),
barge-in clears, and protocol errors. A frame is voiced when any 10 ms window of it is (the
Gemini Live double's VAD windows), so "last voiced frame" is the frame that carries the end of
the caller's speech however it falls in the frame. The raw timestamps behind the latencies are
in `CallResult` (`start_sent_at`, `turn_end_ms`, `reply_start_ms`), so a bench can subtract a
double's own answer delay or line them up with the double's records (same monotonic clock).
Exotel carries no transcripts, so the events only say what the caller said and when agent audio
started and stopped.

One call costs one coroutine plus one receive task; frames are pre-sliced and base64-encoded once
per utterance (and once per rate for silence), so one process can run hundreds of calls.
"""

from __future__ import annotations

from receptionist.sim.caller.call import place_call, run_load
from receptionist.sim.caller.script import (
    TURN_GAP_MS,
    VOICE_WINDOW_MS,
    CallerScript,
    CallOptions,
    CallResult,
    TranscriptEvent,
    exotel_url,
)

__all__ = [
    "TURN_GAP_MS",
    "VOICE_WINDOW_MS",
    "CallOptions",
    "CallResult",
    "CallerScript",
    "TranscriptEvent",
    "exotel_url",
    "place_call",
    "run_load",
]
