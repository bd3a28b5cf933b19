"""`receptionist call`: one call with live output, or a load run with progress and a summary."""

from __future__ import annotations

import tomllib
from collections.abc import Awaitable, Callable
from pathlib import Path

from rich.console import Console

from receptionist.engines.local.models import LocalModelsMissing
from receptionist.sim.call_report import make_progress, print_live_event, summary_table
from receptionist.sim.caller import CallerScript, CallOptions, CallResult, place_call, run_load
from receptionist.sim.scenarios import GENERIC
from receptionist.sim.voice import local_voice

Voice = Callable[[str, int], Awaitable[bytes]]


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
    voice: str = "auto",
    scenario: Path | None = None,
) -> int:
    script = None
    if scenario is not None:
        script = load_scenario(scenario)
    elif not wav_in:
        script = CallerScript(utterances=lines or [t.heard for t in GENERIC])
    speak = await choose_voice(voice, console) if script is not None else None

    def options(i: int) -> CallOptions:
        return CallOptions(
            url=url,
            realtime=realtime,
            sample_rate=sample_rate,
            from_number=from_number,
            auth=auth,
            wav_in=wav_in,
            wav_out=wav_out if calls == 1 else None,
            voice=speak,
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


async def choose_voice(voice: str, console: Console) -> Voice | None:
    """`local`: Piper at telephone rate (needs the `local` extra); `tone`: tone-speech, which
    only the Gemini Live double "hears"; `auto`: local when installed."""
    if voice == "tone":
        return None
    try:
        return await local_voice()
    except LocalModelsMissing as exc:
        if voice == "local":
            raise
        console.print(f"[yellow]tone-speech voice[/yellow] ({exc})")
        return None


def load_scenario(path: Path) -> CallerScript:
    """A scenario file: ``[[line]]`` tables with ``say`` and an optional ``pause_ms`` after it.

    [[line]]
    say = "How much is the black forest cake?"
    [[line]]
    say = "I'd like one kilo for tomorrow."
    pause_ms = 2000
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    lines = data.get("line")
    if not isinstance(lines, list) or not lines:
        raise ScenarioError(f'{path}: needs at least one [[line]] with say = "..."')
    script = CallerScript()
    for i, item in enumerate(lines):
        say = item.get("say") if isinstance(item, dict) else None
        if not isinstance(say, str) or not say.strip():
            raise ScenarioError(f'{path}: line {i + 1} has no say = "..."')
        script.utterances.append(say.strip())
        pause = item.get("pause_ms")
        if pause is not None:
            if not isinstance(pause, int) or not 0 <= pause <= 60_000:
                raise ScenarioError(f"{path}: line {i + 1}: pause_ms must be 0..60000")
            script.pause_after_ms[i] = pause
    return script


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the problem."""
