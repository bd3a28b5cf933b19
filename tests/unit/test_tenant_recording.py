"""tenant.toml's `[recording]`: off unless enabled; each bad value reported on its own line."""

from __future__ import annotations

from pathlib import Path

import pytest

from receptionist.tenants.recording_checks import RecordingPolicy
from tests.unit.test_tenant_actions import BASE, line_of, load, problems_of


def test_off_by_default_and_when_not_enabled(tmp_path: Path) -> None:
    assert load(tmp_path / "a", BASE).recording is None
    toml = BASE + '\n[recording]\nenabled = false\nopt_out_digit = "9"\n'
    assert load(tmp_path / "b", toml).recording is None


def test_enabled_with_every_key(tmp_path: Path) -> None:
    toml = BASE + (
        '\n[recording]\nenabled = true\nretention_days = 90\nopt_out_digit = "#"\n'
        'announce = "This call is recorded. Press hash if you would rather not."\n'
    )
    assert load(tmp_path, toml).recording == RecordingPolicy(
        retention_days=90,
        opt_out_digit="#",
        announce="This call is recorded. Press hash if you would rather not.",
    )
    assert load(tmp_path / "b", BASE + "\n[recording]\nenabled = true\n").recording == (
        RecordingPolicy(retention_days=30, opt_out_digit=None, announce=None)
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('enabled = "yes"', "recording.enabled must be true or false"),
        ("retention_days = 0", "retention_days must be a whole number of days from 1 to 3650"),
        ("retention_days = 5000", "retention_days must be a whole number"),
        ("retention_days = 1.5", "retention_days must be a whole number"),
        ('opt_out_digit = "99"', "opt_out_digit must be one phone key"),
        ("opt_out_digit = 9", "opt_out_digit must be one phone key"),
        ('opt_out_digit = "a"', "opt_out_digit must be one phone key"),
        ('announce = ""', "announce"),
        (f'announce = "{"x" * 301}"', "recording.announce must be 1 to 300 characters"),
        ("retain = 30", "unknown key 'recording.retain'"),
    ],
)
def test_bad_values_are_reported_at_their_line(tmp_path: Path, line: str, message: str) -> None:
    enabled = "" if line.startswith("enabled") else "enabled = true\n"
    toml = BASE + f"\n[recording]\n{enabled}{line}\n"
    problems = problems_of(tmp_path, toml)
    assert len(problems) == 1, problems
    assert message in problems[0]
    assert f"tenant.toml:{line_of(toml, line.split(' =')[0])}" in problems[0]


def test_recording_must_be_a_table(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, BASE.replace("name = ", "recording = true\nname = ", 1))
    assert any("recording" in p for p in problems), problems
