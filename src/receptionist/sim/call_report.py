"""Printing simulated calls with rich: live event lines, a summary table, a load-run progress bar.

`percentile` is pure (no rich) so benchmarks and tests can use it directly.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from receptionist.sim.caller import CallResult, TranscriptEvent

__all__ = ["make_progress", "percentile", "print_live_event", "summary_table"]

_KIND_STYLE = {
    "connected": "dim",
    "caller_said": "bold cyan",
    "dtmf": "cyan",
    "agent_audio_start": "bold green",
    "agent_audio_end": "green",
    "clear": "bold yellow",
    "mark": "dim",
    "bad_frame": "bold red",
    "turn_timeout": "yellow",
    "hangup": "magenta",
    "closed": "magenta",
    "error": "bold red",
}


def percentile(values: Iterable[float], p: float) -> float:
    """The `p`-th percentile (0..100) by linear interpolation between closest ranks (the same
    as numpy's default "linear" method): rank = p/100 * (n-1) over the sorted values.
    Returns NaN for no values. Pure Python, no side effects."""
    xs = sorted(float(v) for v in values)
    if not xs:
        return math.nan
    if not 0.0 <= p <= 100.0:
        raise ValueError(f"percentile must be within 0..100, got {p}")
    rank = p / 100.0 * (len(xs) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (rank - lo)


def print_live_event(console: Console, call_sid: str, event: TranscriptEvent) -> None:
    """One line per event: elapsed seconds, call, kind, text."""
    style = _KIND_STYLE.get(event.kind, "")
    kind = f"[{style}]{event.kind:<17}[/]" if style else f"{event.kind:<17}"
    console.print(
        f"[dim]{event.t_ms / 1000.0:7.2f}s[/] [blue]{escape(call_sid)}[/] {kind} "
        f"{escape(event.text)}",
        highlight=False,
    )


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0f} ms"


def summary_table(results: Sequence[CallResult]) -> Table:
    """Calls, ok/failed, greeting and response latency p50/p99, clears, bad frames, errors."""
    greetings = [r.greeting_ms for r in results if r.greeting_ms is not None]
    responses = [ms for r in results for ms in r.response_ms]
    ok = sum(1 for r in results if r.ok)

    table = Table(title="Simulated calls", show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("calls", str(len(results)))
    table.add_row("ok", f"[green]{ok}[/]")
    failed = len(results) - ok
    table.add_row("failed", f"[red]{failed}[/]" if failed else "0")
    table.add_row("greeting p50", _ms(percentile(greetings, 50)))
    table.add_row("greeting p99", _ms(percentile(greetings, 99)))
    table.add_row("response p50", _ms(percentile(responses, 50)))
    table.add_row("response p99", _ms(percentile(responses, 99)))
    table.add_row("responses measured", str(len(responses)))
    table.add_row("unanswered turns", str(sum(r.unanswered_turns for r in results)))
    table.add_row("clears", str(sum(r.clears for r in results)))
    table.add_row("marks echoed", str(sum(r.marks_echoed for r in results)))
    table.add_row("bad frames", str(sum(r.bad_frames for r in results)))
    lag = max((r.max_send_lag_ms for r in results), default=0.0)
    table.add_row("max caller send lag", f"{lag:.0f} ms")
    errors = Counter(r.error for r in results if r.error)
    for reason, count in errors.most_common():
        table.add_row(f"[red]error[/] {escape(reason)}", str(count))
    return table


def make_progress(total: int, description: str = "calls") -> Progress:
    """A progress bar for load runs with one task (id `progress.task_ids[0]`) of `total` steps:
    `with make_progress(n) as p: ... p.advance(p.task_ids[0])`."""
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    progress.add_task(description, total=total)
    return progress
