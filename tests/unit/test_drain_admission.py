"""The drain's phases, admission's reasons and the loop-lag monitor, without a server."""

from __future__ import annotations

import asyncio
import logging
import signal
import time

import pytest
import uvicorn

from receptionist.bridge import drain as drains
from receptionist.bridge.admission import Admission
from receptionist.bridge.drain import END_REASON, Drain
from receptionist.bridge.loop_lag import LoopLagMonitor
from receptionist.bridge.server import DrainingServer

BOUND_S = 30.0  # a broken drain fails here instead of hanging


class FakeCall:
    """A call that ends (leaves `calls`) when told goodbye or closed, if `obliging`."""

    def __init__(self, calls: list[FakeCall], *, ends_on_goodbye: bool = True) -> None:
        self.calls = calls
        self.ends_on_goodbye = ends_on_goodbye
        self.goodbyes: list[str] = []
        self.closes: list[str] = []
        self.told = asyncio.Event()
        self.closed = asyncio.Event()
        calls.append(self)

    async def drain_goodbye(self, reason: str) -> None:
        self.goodbyes.append(reason)
        self.told.set()
        if self.ends_on_goodbye:
            self.calls.remove(self)

    async def drain_close(self, reason: str) -> None:
        self.closes.append(reason)  # may be asked more than once, as a session may
        if self in self.calls:
            self.calls.remove(self)
        self.closed.set()


def make_drain(calls: list[FakeCall], *, timeout_s: float, goodbye_s: float = 300.0) -> Drain:
    return Drain(timeout_s=timeout_s, goodbye_s=goodbye_s, calls=lambda: calls, busy=lambda: 0)


async def test_calls_that_end_by_themselves_hear_no_goodbye() -> None:
    calls: list[FakeCall] = []
    call = FakeCall(calls)
    drain = make_drain(calls, timeout_s=300.0)
    drain.request()
    assert drain.draining
    task = drain.start()
    calls.remove(call)  # the caller hung up
    async with asyncio.timeout(BOUND_S):
        await task
    assert call.goodbyes == [] and call.closes == []


async def test_at_the_timeout_each_call_hears_the_goodbye() -> None:
    calls: list[FakeCall] = []
    one, two = FakeCall(calls), FakeCall(calls)
    async with asyncio.timeout(BOUND_S):
        await make_drain(calls, timeout_s=0.0).start()
    assert one.goodbyes == two.goodbyes == [END_REASON]
    assert one.closes == two.closes == []


async def test_goodbye_not_heard_in_time_then_closed() -> None:
    calls: list[FakeCall] = []
    call = FakeCall(calls, ends_on_goodbye=False)
    async with asyncio.timeout(BOUND_S):
        await make_drain(calls, timeout_s=0.0, goodbye_s=0.0).start()
    assert call.goodbyes == [END_REASON] and call.closes[0] == END_REASON


async def test_each_further_signal_cuts_a_phase_short() -> None:
    calls: list[FakeCall] = []
    call = FakeCall(calls, ends_on_goodbye=False)
    drain = make_drain(calls, timeout_s=300.0, goodbye_s=300.0)
    drain.request()
    task = drain.start()
    drain.request()  # second: goodbye now
    async with asyncio.timeout(BOUND_S):
        await call.told.wait()
    assert not call.closes
    drain.request()  # third: close now
    async with asyncio.timeout(BOUND_S):
        await task
    assert call.closes[0] == END_REASON


async def test_a_call_that_starts_during_the_drain_is_closed() -> None:
    calls: list[FakeCall] = []
    saving = [1]  # a stream accepted before the signal, its `start` not yet read
    drain = Drain(timeout_s=0.0, goodbye_s=0.0, calls=lambda: calls, busy=lambda: saving[0])
    task = drain.start()
    await asyncio.sleep(0.3)  # whichever phase the drain is in by now
    late = FakeCall(calls, ends_on_goodbye=False)  # its `start` arrives now
    async with asyncio.timeout(BOUND_S):
        await late.closed.wait()
        saving[0] = 0
        await task
    assert late.closes[0] == END_REASON


async def test_drain_waits_until_every_call_is_saved() -> None:
    saving = [1]
    drain = Drain(timeout_s=300.0, goodbye_s=300.0, calls=list, busy=lambda: saving[0])
    task = drain.start()
    await asyncio.sleep(0.2)  # a few polls: it must still be waiting
    assert not task.done()
    saving[0] = 0
    async with asyncio.timeout(BOUND_S):
        await task


def test_admission_reasons_in_order_and_one_log_line_per_burst(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = {"draining": False, "lag": 0.0}
    adm = Admission(
        max_calls=2,
        max_lag_s=0.1,
        lag_s=lambda: state["lag"],
        draining=lambda: state["draining"],
    )
    caplog.set_level(logging.INFO, logger="receptionist.admission")
    assert adm.admit() is None and adm.admit() is None and adm.active == 2
    assert [adm.admit() for _ in range(5)] == ["capacity"] * 5
    adm.release()
    state["lag"] = 0.5
    assert adm.admit() == "overloaded"
    state["lag"] = 0.0
    assert adm.admit() is None  # room again
    state["draining"] = True
    assert adm.admit() == "draining"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "refusing new calls: capacity (2 calls, MAX_CALLS_PER_PROCESS=2)",
        "refusing new calls: overloaded (event loop 500 ms late, limit 100 ms)",
        "refusing new calls: draining (the server is stopping)",
    ]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert infos == ["taking calls again (1 refused: overloaded)"]


def test_admission_zero_means_no_limit() -> None:
    adm = Admission(max_calls=0, max_lag_s=0.0, lag_s=lambda: 9.0, draining=lambda: False)
    assert all(adm.admit() is None for _ in range(1000))


def test_lag_is_the_median_of_recent_samples() -> None:
    mon = LoopLagMonitor(window=5)
    assert mon.lag_s == 0.0
    for lag in (0.001, 0.002, 2.0, 0.001, 0.003):  # one hiccup
        mon.record(lag)
    assert mon.lag_s < 0.01
    for lag in (0.3, 0.4, 0.5):  # late most of the time
        mon.record(lag)
    assert mon.lag_s == pytest.approx(0.3)


async def test_monitor_sees_a_blocked_loop() -> None:
    mon = LoopLagMonitor(interval_s=0.01, window=3)
    mon.start()
    try:
        async with asyncio.timeout(BOUND_S):
            # back-to-back blocks with one loop turn between: every wake of the monitor comes
            # about 40 ms late (a busy machine only makes it later)
            while mon.lag_s < 0.03:
                time.sleep(0.05)  # noqa: ASYNC251 - blocking the loop is what is measured
                await asyncio.sleep(0)
    finally:
        await mon.stop()


def test_signals_drain_the_registered_apps_and_exit_cleanly() -> None:
    calls: list[FakeCall] = []
    drain = make_drain(calls, timeout_s=300.0)
    server = DrainingServer(uvicorn.Config(app=None))
    server.started = True
    drains.register(drain)
    try:
        server.handle_exit(signal.SIGTERM, None)
        assert drain.draining and not server.should_exit  # drains first, then stops
        server.handle_exit(signal.SIGINT, None)
        assert drain.signals == 2
        assert server._captured_signals == []  # not re-raised at the end: exit code 0
    finally:
        drains.unregister(drain)
    supervised = DrainingServer(uvicorn.Config(app=None), ignore_sigint=True)
    supervised.handle_exit(signal.SIGINT, None)  # the supervisor relays Ctrl-C as SIGTERM
    assert not supervised.should_exit
