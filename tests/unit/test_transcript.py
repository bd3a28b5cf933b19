"""Transcript assembly from Gemini's transcription pieces, in speaking order."""

from __future__ import annotations

from receptionist.bridge.transcript import TranscriptRecorder


def speakers(turns: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [(t["speaker"], t["text"]) for t in turns]


def test_simple_exchange() -> None:
    tr = TranscriptRecorder()
    tr.caller_text("Hello, ", 1000)
    tr.caller_text("is the shop open?", 1800)
    tr.agent_text("Yes, ", 2500)
    tr.agent_text("until 9 pm.", 3100)
    turn = tr.agent_done(3600)
    assert turn == {
        "speaker": "agent",
        "text": "Yes, until 9 pm.",
        "start_ms": 2500,
        "end_ms": 3600,
    }
    assert tr.turns == [
        {"speaker": "caller", "text": "Hello, is the shop open?", "start_ms": 1000, "end_ms": 1800},
        turn,
    ]


def test_late_caller_transcription_still_comes_first() -> None:
    tr = TranscriptRecorder()
    tr.agent_text("Sure, ", 2000)
    tr.caller_text("Do you deliver", 2100)  # transcription of what the caller said before
    tr.agent_text("we deliver within 5 km.", 2600)
    tr.caller_text(" to Indiranagar?", 2700)
    tr.agent_done(3000)
    assert speakers(tr.turns) == [
        ("caller", "Do you deliver to Indiranagar?"),
        ("agent", "Sure, we deliver within 5 km."),
    ]


def test_several_exchanges_keep_order() -> None:
    tr = TranscriptRecorder()
    for i in range(3):
        base = i * 10_000
        tr.agent_text(f"answer {i}", base + 500)
        tr.caller_text(f"question {i}", base + 600)
        tr.agent_done(base + 900)
    assert speakers(tr.turns) == [
        ("caller", "question 0"),
        ("agent", "answer 0"),
        ("caller", "question 1"),
        ("agent", "answer 1"),
        ("caller", "question 2"),
        ("agent", "answer 2"),
    ]
    assert [t["start_ms"] for t in tr.turns if t["speaker"] == "agent"] == [500, 10_500, 20_500]


def test_greeting_without_caller_turn() -> None:
    tr = TranscriptRecorder()
    tr.agent_text("Namaste, Sweet Crumbs here.", 100)
    tr.agent_done(1500)
    assert speakers(tr.turns) == [("agent", "Namaste, Sweet Crumbs here.")]


def test_interrupted_agent_turn_is_marked() -> None:
    tr = TranscriptRecorder()
    tr.caller_text("What time", 1000)
    tr.agent_text("We open at", 1500)
    turn = tr.agent_done(1700, interrupted=True)
    assert turn is not None
    assert turn["interrupted"] is True
    assert tr.turns[-1] == turn
    assert tr.turns[-1]["end_ms"] == 1700
    # a normal turn carries no flag at all
    tr.agent_text("Ten in the morning.", 2000)
    tr.agent_done(2500)
    assert "interrupted" not in tr.turns[-1]


def test_interrupted_before_any_words_is_still_recorded() -> None:
    tr = TranscriptRecorder()
    tr.caller_text("Wait-", 500)
    tr.agent_activity(600)  # audio started, no transcription yet
    turn = tr.agent_done(700, interrupted=True)
    assert tr.turns == [
        {"speaker": "caller", "text": "Wait-", "start_ms": 500, "end_ms": 500},
        {"speaker": "agent", "text": "", "start_ms": 600, "end_ms": 700, "interrupted": True},
    ]
    assert turn == tr.turns[-1]


def test_empty_agent_turn_not_stored() -> None:
    tr = TranscriptRecorder()
    tr.caller_text("hmm", 100)
    tr.agent_activity(200)
    tr.agent_activity(900)
    tr.agent_done(1000)
    assert speakers(tr.turns) == [("caller", "hmm")]
    tr.agent_text("   ", 1100)  # whitespace only is empty too
    tr.agent_done(1200)
    assert speakers(tr.turns) == [("caller", "hmm")]


def test_agent_done_returns_silent_turn_without_storing_it() -> None:
    # The session sends its end-of-turn mark whenever a turn is returned, so an agent turn that
    # played audio without any transcription is still handed back (though not stored). Note the
    # docstring says "if it said anything": it does not match this (deliberate-looking) behaviour.
    tr = TranscriptRecorder()
    tr.agent_activity(200)
    turn = tr.agent_done(300)
    assert turn == {"speaker": "agent", "text": "", "start_ms": 200, "end_ms": 300}
    assert tr.turns == []


def test_whitespace_only_caller_turn_not_stored() -> None:
    tr = TranscriptRecorder()
    tr.caller_text(" ", 100)
    tr.agent_text("Hello?", 200)
    tr.agent_done(300)
    assert speakers(tr.turns) == [("agent", "Hello?")]


def test_agent_done_with_nothing_open() -> None:
    tr = TranscriptRecorder()
    assert tr.agent_done(100) is None
    assert tr.turns == []


def test_caller_only_exchange_is_committed_on_agent_done() -> None:
    tr = TranscriptRecorder()
    tr.caller_text("Hello?", 100)
    assert tr.agent_done(200) is None
    assert speakers(tr.turns) == [("caller", "Hello?")]


def test_agent_end_time_is_latest_of_activity_and_done() -> None:
    tr = TranscriptRecorder()
    tr.agent_text("a", 100)
    tr.agent_activity(5000)  # audio kept playing after the last text piece
    turn = tr.agent_done(4000)
    assert turn is not None
    assert (turn["start_ms"], turn["end_ms"]) == (100, 5000)


def test_times_are_rounded_ints() -> None:
    tr = TranscriptRecorder()
    tr.caller_text("x", 10.4)
    tr.agent_text("y", 20.6)
    tr.agent_done(30.5)
    assert [(t["start_ms"], t["end_ms"]) for t in tr.turns] == [(10, 10), (21, 30)]
    assert all(isinstance(t["start_ms"], int) for t in tr.turns)


def test_snapshot_includes_open_exchange_caller_hung_up_mid_sentence() -> None:
    tr = TranscriptRecorder()
    tr.caller_text("I want to order", 1000)
    tr.agent_text("Great, what", 1500)
    tr.agent_done(2000)
    tr.caller_text("two chocolate", 3000)  # caller disconnects here
    tr.agent_text("Two choc", 3400)
    snap = tr.snapshot(4000)
    assert speakers(snap) == [
        ("caller", "I want to order"),
        ("agent", "Great, what"),
        ("caller", "two chocolate"),
        ("agent", "Two choc"),
    ]
    assert snap[-1]["incomplete"] is True
    assert snap[-1]["end_ms"] == 4000
    assert "incomplete" not in snap[-2]
    # snapshot does not commit or alter anything
    assert len(tr.turns) == 2
    assert tr.snapshot(4000) == snap
    tr.agent_done(4500)
    assert speakers(tr.turns)[2:] == [("caller", "two chocolate"), ("agent", "Two choc")]
    assert "incomplete" not in tr.turns[-1]


def test_snapshot_with_only_caller_speaking() -> None:
    tr = TranscriptRecorder()
    tr.caller_text("Hello, anyone th", 700)
    snap = tr.snapshot(900)
    assert snap == [
        {"speaker": "caller", "text": "Hello, anyone th", "start_ms": 700, "end_ms": 700}
    ]


def test_snapshot_skips_silent_open_agent_turn() -> None:
    tr = TranscriptRecorder()
    tr.agent_activity(100)
    assert tr.snapshot(200) == []


def test_snapshot_is_a_copy() -> None:
    tr = TranscriptRecorder()
    tr.agent_text("hi", 1)
    tr.agent_done(2)
    snap = tr.snapshot(3)
    snap.append({"speaker": "x"})
    assert len(tr.turns) == 1


def test_last_caller_text() -> None:
    tr = TranscriptRecorder()
    assert tr.last_caller_text() == ""
    tr.caller_text(" first ", 1)
    tr.agent_text("ok", 2)
    tr.agent_done(3)
    assert tr.last_caller_text() == "first"
    tr.agent_text("anything else?", 4)
    tr.agent_done(5)
    assert tr.last_caller_text() == "first"
    tr.caller_text("second", 6)
    assert tr.last_caller_text() == "first"  # still open, not committed
    tr.agent_done(7)
    assert tr.last_caller_text() == "second"


def test_a_complete_turn_still_playing_can_be_cut() -> None:
    t = TranscriptRecorder()
    t.agent_text("Hello, thank you for calling. How can I help?", 100)
    t.agent_done(300)  # handed over in 200 ms; it plays for three seconds
    t.caller_text("What time do you close", 1200)
    assert t.cut_last_agent_turn(1150)
    (greeting,) = t.turns
    assert greeting["interrupted"] is True and greeting["end_ms"] == 1150
    t.agent_text("We close at nine.", 2500)
    t.agent_done(2600)
    assert [x["speaker"] for x in t.turns] == ["agent", "caller", "agent"]
    # a caller turn stored after the last agent turn: that agent turn was heard out
    t.caller_text("Thanks", 3000)
    t.agent_done(3400)  # no agent words: only the caller's turn is stored
    assert t.turns[-1]["speaker"] == "caller"
    assert not t.cut_last_agent_turn(3500)
    assert "interrupted" not in t.turns[2]


def test_version_changes_whenever_the_snapshot_would_show_new_text() -> None:
    t = TranscriptRecorder()
    seen = {t.version()}
    for step in (
        lambda: t.agent_text("Hello", 0),
        lambda: t.agent_text(" there", 100),
        lambda: t.caller_text("Hi", 200),
        lambda: t.agent_done(300),
        lambda: t.cut_last_agent_turn(350),  # marks the finished agent turn interrupted
    ):
        step()
        assert t.version() not in seen
        seen.add(t.version())
    before = t.version()
    t.snapshot(1000)  # reading changes nothing
    assert t.version() == before


def test_a_caller_line_starts_where_their_voice_was_heard() -> None:
    """The transcription comes once the words are said: the voice's onset is the line's start,
    but never before the last line's end nor after the words' own time."""
    tr = TranscriptRecorder()
    tr.agent_text("Hello!", 0)
    tr.agent_done(900)
    assert tr.caller_text("I want ", 4000, voiced_ms=2500) is True
    assert tr.caller_text("a cake", 4300, voiced_ms=3900) is False  # the turn's start stays
    tr.agent_text("Sure.", 4500)
    tr.agent_done(5000)
    assert tr.turns[1] == {
        "speaker": "caller", "text": "I want a cake", "start_ms": 2500, "end_ms": 4300,
    }  # fmt: skip
    tr.caller_text("Bye", 6000, voiced_ms=-100)  # an onset before the last line: clamped
    tr.caller_text("!", 6100)
    tr.agent_done(6200)
    assert tr.turns[-1]["start_ms"] == tr.turns[-2]["end_ms"] == 5000
    tr.caller_text("later", 7000, voiced_ms=9000)  # never after the words themselves
    assert tr.snapshot(7000)[-1]["start_ms"] == 7000
