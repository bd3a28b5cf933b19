"""Scenario files for `receptionist call --scenario`: lines, pauses, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from receptionist.sim.call_cli import ScenarioError, load_scenario


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "call.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_lines_and_pauses(tmp_path: Path) -> None:
    script = load_scenario(
        write(
            tmp_path,
            '[[line]]\nsay = "How much is the black forest cake?"\n\n'
            '[[line]]\nsay = " One kilo, please. "\npause_ms = 2500\n',
        )
    )
    assert script.utterances == ["How much is the black forest cake?", "One kilo, please."]
    assert script.pause_after_ms == {1: 2500}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "needs at least one [[line]]"),
        ('[[line]]\nsay = ""\n', "line 1 has no say"),
        ('[[line]]\nsay = "ok"\n[[line]]\npause_ms = 5\n', "line 2 has no say"),
        ('[[line]]\nsay = "ok"\npause_ms = -1\n', "line 1: pause_ms must be 0..60000"),
        ("[[line]\nsay =", "call.toml"),
    ],
)
def test_bad_scenarios_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_scenario(write(tmp_path, text))


def test_a_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"nowhere\.toml"):
        load_scenario(tmp_path / "nowhere.toml")
