"""/metrics of one of several processes on a port: every sample names its process."""

from __future__ import annotations

from receptionist.bridge.metrics import Metrics


def samples(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("#")]


def test_one_process_alone_has_no_pid_label() -> None:
    assert all("pid=" not in line for line in samples(Metrics().render(0)))


def test_every_sample_of_a_shared_port_process_names_its_pid() -> None:
    m = Metrics(process_label="4242")
    m.calls_started = 3
    m.calls_ended["completed"] += 2
    m.latency_in.record(0.004)  # a histogram: buckets with `le`, and _sum/_count with no label
    lines = samples(m.render(1))
    assert lines and all('pid="4242"}' in line for line in lines), lines
    assert 'receptionist_calls_started_total{pid="4242"} 3' in lines
    assert 'receptionist_calls_ended_total{status="completed",pid="4242"} 2' in lines
    assert 'receptionist_bridge_latency_in_seconds_count{pid="4242"} 1' in lines
    assert any(
        line.startswith('receptionist_bridge_latency_in_seconds_bucket{le="+Inf",pid="4242"}')
        for line in lines
    )
    # comment lines stay as Prometheus expects them
    assert "# TYPE receptionist_active_calls gauge" in m.render(1).splitlines()
