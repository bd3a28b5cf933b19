"""Process-wide counters for /metrics (Prometheus text format). No per-frame allocation."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from receptionist.bridge.latency import LatencyHistogram


@dataclass
class Metrics:
    calls_started: int = 0
    calls_ended: Counter[str] = field(default_factory=Counter)  # by status
    calls_rejected: Counter[str] = field(default_factory=Counter)  # by reason
    bad_frames: Counter[str] = field(default_factory=Counter)  # by kind
    frames_in: int = 0
    frames_out: int = 0
    clears_sent: int = 0
    persist_failures: int = 0
    latency_in: LatencyHistogram = field(default_factory=LatencyHistogram)
    latency_out: LatencyHistogram = field(default_factory=LatencyHistogram)
    greeting: LatencyHistogram = field(default_factory=LatencyHistogram)
    # Set when several processes share the port (`serve --workers N`): a scrape reaches one of
    # them, so every sample says which (pid), and each series stays one process's own count
    # instead of jumping between processes like a counter reset.
    process_label: str | None = None

    def render(
        self, active_calls: int, *, live_events_dropped: int = 0, event_loop_lag_s: float = 0.0
    ) -> str:
        lines = [
            "# TYPE receptionist_active_calls gauge",
            f"receptionist_active_calls {active_calls}",
            "# TYPE receptionist_calls_started_total counter",
            f"receptionist_calls_started_total {self.calls_started}",
            "# TYPE receptionist_calls_ended_total counter",
        ]
        lines += [
            f'receptionist_calls_ended_total{{status="{k}"}} {v}'
            for k, v in sorted(self.calls_ended.items())
        ]
        lines.append("# TYPE receptionist_calls_rejected_total counter")
        lines += [
            f'receptionist_calls_rejected_total{{reason="{k}"}} {v}'
            for k, v in sorted(self.calls_rejected.items())
        ]
        lines.append("# TYPE receptionist_bad_frames_total counter")
        lines += [
            f'receptionist_bad_frames_total{{kind="{k}"}} {v}'
            for k, v in sorted(self.bad_frames.items())
        ]
        lines += [
            "# TYPE receptionist_frames_in_total counter",
            f"receptionist_frames_in_total {self.frames_in}",
            "# TYPE receptionist_frames_out_total counter",
            f"receptionist_frames_out_total {self.frames_out}",
            "# TYPE receptionist_clears_sent_total counter",
            f"receptionist_clears_sent_total {self.clears_sent}",
            "# TYPE receptionist_persist_failures_total counter",
            f"receptionist_persist_failures_total {self.persist_failures}",
            # the live view's events the database could not take (the call itself is unaffected)
            "# TYPE receptionist_live_events_dropped_total counter",
            f"receptionist_live_events_dropped_total {live_events_dropped}",
            # how late the process's event loop runs (bridge/loop_lag.py); admission refuses
            # calls above ADMISSION_MAX_LOOP_LAG_MS
            "# TYPE receptionist_event_loop_lag_seconds gauge",
            f"receptionist_event_loop_lag_seconds {event_loop_lag_s:.4f}",
        ]
        for name, hist in (
            ("receptionist_bridge_latency_in_seconds", self.latency_in),
            ("receptionist_bridge_latency_out_seconds", self.latency_out),
            ("receptionist_greeting_seconds", self.greeting),
        ):
            lines.append(f"# TYPE {name} histogram")
            lines += hist.prometheus(name)
        if self.process_label is not None:
            lines = [_labelled(line, f'pid="{self.process_label}"') for line in lines]
        return "\n".join(lines) + "\n"


def _labelled(line: str, label: str) -> str:
    """`label` added to a sample line (`name value` or `name{...} value`); comments as they are."""
    if line.startswith("#"):
        return line
    series, _, value = line.rpartition(" ")
    name, _, labels = series.partition("{")
    labels = labels.removesuffix("}")
    return f"{name}{{{labels + ',' if labels else ''}{label}}} {value}"
