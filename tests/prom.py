"""Reading Prometheus metrics in tests: a scrape parsed with prometheus_client's own parser, and
counters of this test process as changes since a point (every in-process server of a test run
shares the process's metrics)."""

from __future__ import annotations

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

#: A parsed scrape: (name, labels) -> value.
Scrape = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Scrape:
    """Every sample of a scrape: (name, labels) -> value."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(scraped: Scrape, name: str, **labels: str) -> float:
    """One sample of a parsed scrape (0 when absent)."""
    return scraped.get((name, frozenset(labels.items())), 0.0)


def total(scraped: Scrape, name: str, **labels: str) -> float:
    """The sum of `name` over every label set that includes `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in scraped.items() if n == name and want <= ls)


class Changes:
    """This process's metric values relative to when it was made."""

    def __init__(self) -> None:
        self.before = self._now()

    @staticmethod
    def _now() -> Scrape:
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in REGISTRY.collect()
            for s in family.samples
        }

    def __call__(self, name: str, **labels: str) -> float:
        """How much the sum of `name` over label sets including `labels` grew."""
        return total(self._now(), name, **labels) - total(self.before, name, **labels)

    def now(self, name: str, **labels: str) -> float:
        """The current sum of `name` over label sets including `labels` (gauges)."""
        return total(self._now(), name, **labels)
