"""The watchdog's rules (bridge/silence.py) with plain clock readings: no sockets, no sleeps."""

from __future__ import annotations

from receptionist.bridge.silence import Act, Clocks, Hangup, Limits, decide

LIMITS = Limits(max_call_s=600.0, prompt_after_s=10.0, hangup_after_s=25.0)


def clocks(*, last: float = 0.0, playing: float = 0.0, prompted: float | None = None) -> Clocks:
    return Clocks(started=0.0, last_activity=last, playback_until=playing, prompted_at=prompted)


def test_a_talking_call_waits() -> None:
    v = decide(5.0, clocks(last=1.0), LIMITS, None)
    assert v.act is Act.WAIT and v.prompted_at is None and v.silent_s == 4.0


def test_silence_prompts_once_then_hangs_up_counted_from_the_prompt() -> None:
    v = decide(10.0, clocks(), LIMITS, None)
    assert v.act is Act.PROMPT and v.prompted_at == 10.0
    # 14 s after the prompt: not yet (hang-up after 25 - 10 = 15 s more)
    assert decide(24.0, clocks(prompted=10.0), LIMITS, None).act is Act.WAIT
    v = decide(25.0, clocks(prompted=10.0), LIMITS, None)
    assert v.act is Act.SILENT and v.prompted_at == 10.0


def test_agent_audio_pauses_the_silence() -> None:
    assert decide(15.0, clocks(playing=8.0), LIMITS, None).act is Act.WAIT
    assert decide(18.0, clocks(playing=8.0), LIMITS, None).act is Act.PROMPT


def test_an_answer_after_the_prompt_resets_it() -> None:
    v = decide(30.0, clocks(last=12.0, prompted=10.0), LIMITS, None)
    # the caller spoke at 12: the prompt is forgotten, 18 s of silence prompts again
    assert v.act is Act.PROMPT and v.prompted_at == 30.0


def test_the_length_limit_comes_before_silence() -> None:
    v = decide(600.0, clocks(last=599.0), LIMITS, None)
    assert v.act is Act.MAX_DURATION


def test_a_goodbye_ends_once_heard_or_at_its_deadline() -> None:
    pending = Hangup(goodbye_sent=False, deadline=115.0)
    assert decide(100.0, clocks(), LIMITS, pending).act is Act.WAIT
    assert decide(115.0, clocks(), LIMITS, pending).act is Act.END
    sent = Hangup(goodbye_sent=True, deadline=115.0)
    assert decide(100.0, clocks(playing=103.0), LIMITS, sent).act is Act.WAIT
    assert decide(103.0, clocks(playing=103.0), LIMITS, sent).act is Act.END
    # while a goodbye is pending nothing else happens, however long the silence
    assert decide(900.0, clocks(prompted=5.0), LIMITS, sent).prompted_at == 5.0
