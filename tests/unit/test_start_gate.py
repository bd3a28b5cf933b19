"""bridge/start_gate.py: deferred work waits until calls stop starting, never past its bound."""

from __future__ import annotations

import asyncio

from receptionist.bridge.start_gate import StartGate


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_wait_follows_the_last_start_within_the_bound() -> None:
    clock = Clock()
    gate = StartGate(quiet_s=0.02, max_wait_s=0.25, clock=clock)
    assert gate.remaining(asked_at=clock.now) == 0  # no call has started: go now
    gate.started()
    asked = clock.now
    assert round(gate.remaining(asked), 6) == 0.02  # a call just started: its quiet period
    clock.now += 0.015
    gate.started()  # another start in the same burst moves the end of it
    assert round(gate.remaining(asked), 6) == 0.02
    for _ in range(30):  # starts that never pause: the work goes at its bound
        clock.now += 0.01
        gate.started()
    assert gate.remaining(asked) == 0
    clock.now = asked + 0.1
    gate.started()
    assert round(gate.remaining(clock.now), 6) == 0.02  # work asked later has its own bound


async def test_wait_returns_once_starts_stop() -> None:
    gate = StartGate(quiet_s=0.001, max_wait_s=3600)
    await asyncio.wait_for(gate.wait(), 5)  # nothing started: at once
    gate.started()
    await asyncio.wait_for(gate.wait(), 5)
    assert gate.remaining(asked_at=0) == 0
