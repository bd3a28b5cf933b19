"""What a log line is about: the call, tenant, job and stage, carried in a context variable.

Set once where a unit of work begins (a call's stream once its `start` frame is read, a pipeline
job when a worker takes a call, a message send) and read by the logging filter (logs.py) for
every record emitted while that work runs: our modules, the SDKs' and the libraries' alike, with
no string formatting at the call sites. asyncio copies the context into every task created
inside it, so a call's engine pump, watchdog and SDK tasks carry its fields too.

Process-wide tasks that one call happens to start (a shared cache load, the live feed) must not
carry that call's fields for the rest of their lives: start them with `detached()`.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping
from types import MappingProxyType

# The fields a log line may carry, in the order a plain-text line shows them.
FIELDS = ("tenant", "call_sid", "stream_sid", "job", "stage", "message_id")

_EMPTY: Mapping[str, str] = MappingProxyType({})
_fields: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "receptionist_log_fields", default=_EMPTY
)


def bind(**fields: object) -> contextvars.Token[Mapping[str, str]]:
    """Add `fields` (None or "" values are skipped) to the current context; returns the token
    that `unbind` takes to restore the previous fields."""
    merged = dict(_fields.get())
    for name, value in fields.items():
        if value is not None and value != "":
            merged[name] = str(value)
    return _fields.set(MappingProxyType(merged))


def unbind(token: contextvars.Token[Mapping[str, str]]) -> None:
    _fields.reset(token)


@contextlib.contextmanager
def bound(**fields: object) -> Iterator[None]:
    """`fields` for the duration of a block."""
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)


def current() -> Mapping[str, str]:
    """The fields of the current context (read-only)."""
    return _fields.get()


def detached() -> contextvars.Context:
    """A copy of the current context without any log fields: pass it as `context=` to
    `create_task` for a task that outlives the call that happened to start it."""
    ctx = contextvars.copy_context()
    ctx.run(_fields.set, _EMPTY)
    return ctx
