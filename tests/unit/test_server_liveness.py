"""When a server can tell, without waiting for a heartbeat, that another process is gone."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from receptionist.store.checkpoints import ServerProcess, provably_dead
from receptionist.store.schema import utcnow

NOW = utcnow()
ME = ServerProcess(id="me", host="box", pid=200, pid_space="boot/pid:[1]", started_at=NOW)


def other(**kw: object) -> ServerProcess:
    base = ServerProcess(
        id="old", host="box", pid=100, pid_space="boot/pid:[1]", started_at=NOW - timedelta(hours=1)
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def running(*pids: int) -> Callable[[int], bool]:
    return lambda pid: pid in pids


def test_same_pid_space_pid_gone_is_dead_running_is_not() -> None:
    assert provably_dead(other(), ME, pid_running=running())
    assert not provably_dead(other(), ME, pid_running=running(100))


def test_our_own_pid_under_another_start_id_is_dead() -> None:
    assert provably_dead(other(pid=200), ME, pid_running=running(200))


def test_ourselves_and_other_hosts_prove_nothing() -> None:
    assert not provably_dead(ME, ME, pid_running=running())
    assert not provably_dead(other(host="elsewhere"), ME, pid_running=running())


def test_containers_restarted_pid_1_is_dead_a_sibling_is_not_provable() -> None:
    me = replace(ME, pid=1, pid_space="boot/pid:[2]")
    # an earlier pid 1 of this host in another pid namespace: the container before a restart
    assert provably_dead(other(pid=1), me, pid_running=running(1))
    # a later start (not us, not earlier) or another pid: the heartbeat decides
    assert not provably_dead(other(pid=1, started_at=NOW + timedelta(seconds=1)), me)
    assert not provably_dead(other(pid=7), me, pid_running=running())
