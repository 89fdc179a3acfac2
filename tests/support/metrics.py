"""Reading the control plane's /metrics in the tests: the samples of metric families, or of
the text Prometheus would scrape, keyed by name and labels."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families


def samples(families: Iterable[Metric]) -> dict[tuple[str, frozenset], float]:
    """``{(sample name, frozenset of its labels' (name, value))): value}``."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in families
        for sample in family.samples
    }


def scraped(text: str) -> dict[tuple[str, frozenset], float]:
    return samples(text_string_to_metric_families(text))


def value(found: dict, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]
