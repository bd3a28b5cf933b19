"""`receptionist call`: one call with live output, or a load run with progress and a summary."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from receptionist.sim.call_report import make_progress, print_live_event, summary_table
from receptionist.sim.caller import CallerScript, CallOptions, CallResult, place_call, run_load
from receptionist.sim.scenarios import GENERIC


async def run_call_command(
    *,
    url: str,
    lines: list[str],
    wav_in: Path | None,
    wav_out: Path | None,
    calls: int,
    concurrency: int,
    realtime: bool,
    sample_rate: int,
    from_number: str,
    auth: tuple[str, str] | None,
    console: Console,
) -> int:
    script = None if wav_in else CallerScript(utterances=lines or [t.heard for t in GENERIC])

    def options(i: int) -> CallOptions:
        return CallOptions(
            url=url,
            realtime=realtime,
            sample_rate=sample_rate,
            from_number=from_number,
            auth=auth,
            wav_in=wav_in,
            wav_out=wav_out if calls == 1 else None,
        )

    if calls == 1:
        opts = options(0)
        opts.on_event = lambda ev: print_live_event(console, opts.call_sid, ev)
        results = [await place_call(opts, script)]
    else:
        with make_progress(calls) as progress:
            task = progress.add_task("calls", total=calls)

            def done(_: CallResult) -> None:
                progress.advance(task)

            results = await run_load(
                options,
                script or CallerScript(),
                calls=calls,
                concurrency=concurrency,
                on_done=done,
            )
    console.print(summary_table(results))
    return 0 if all(r.ok for r in results) else 1
