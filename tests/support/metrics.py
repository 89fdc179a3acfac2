"""Reading the control plane's /metrics in the tests: the samples of metric families, or of
the text Prometheus would scrape, keyed by name and labels; and a real Prometheus scraping it."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from tests.support.kafkaenv import PrometheusServer


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


class ControlPlanePrometheus(PrometheusServer):
    """The test Prometheus (Debian's, as the Kafka environment runs it) scraping the control
    plane's /metrics at ``target`` (host:port) every second, with the bearer token."""

    name = "prometheus-sluice"

    def __init__(self, target: str, *, token: str) -> None:
        super().__init__(exporter_port=0)
        self.target = target
        self.token = token

    def scrape_configs(self) -> list[dict]:
        return [
            {
                "job_name": "sluice",
                "metrics_path": "/metrics",
                "authorization": {"type": "Bearer", "credentials": self.token},
                "static_configs": [{"targets": [self.target]}],
            }
        ]
