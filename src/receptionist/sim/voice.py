"""A real voice for the simulated caller: the local engine's text-to-speech at telephone rate.

    opts = CallOptions(url=..., voice=await local_voice())

Needs the `local` extra (raises LocalModelsMissing, naming it, when absent).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable


async def local_voice(voice: str | None = None) -> Callable[[str, int], Awaitable[bytes]]:
    """(text, sample_rate) -> PCM16 mono, spoken by Piper; the voice is loaded now."""
    from receptionist.engines.local.tts import TextToSpeech, TtsSettings

    tts = TextToSpeech(TtsSettings(voice=voice))
    await tts.warm_up()

    async def speak(text: str, sample_rate: int) -> bytes:
        return await tts.synthesize(text, sample_rate)

    return speak
