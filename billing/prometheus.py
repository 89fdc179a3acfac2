"""Reading a cell's Prometheus for metering: the queries, the HTTP client, the parsing.

What is read (metric names and labels of Strimzi's JMX exporter rules and PodMonitor):

- bytes in and out per topic and broker, ``kafka_server_brokertopicmetrics_bytes{in,out}_total``:
  Kafka counts replication in separate meters (``replicationbytes*``), so these are client
  traffic only; Kafka's own topics (``__consumer_offsets``, ``__transaction_state``…) are
  skipped;
- log size per partition and broker, ``kafka_log_log_size``;
- ``process_start_time_seconds`` of each broker, to tell a restart from a counter that merely
  went on (a restarted counter may have passed its old value by the next scrape);
- ``up`` of each broker target, to tell which hours were scraped throughout.

Raw samples are read with range selectors on ``/api/v1/query``, never ``increase()`` (which
extrapolates). Which cluster a series belongs to is billing.attribution's; what the samples add
up to is billing.metering's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from django.conf import settings

from clusters.models import Dimension
from clusters.prometheus import PrometheusClient, regex_literal

from .deltas import Sample, Window

COUNTER_METRICS = {
    Dimension.INGRESS_BYTES: "kafka_server_brokertopicmetrics_bytesin_total",
    Dimension.EGRESS_BYTES: "kafka_server_brokertopicmetrics_bytesout_total",
}
LOG_SIZE_METRIC = "kafka_log_log_size"
PROCESS_START_METRIC = "process_start_time_seconds"
# Series of a Strimzi Kafka carry the PodMonitor's labels; anything else on the cell's
# Prometheus is not read.
STRIMZI_SERIES = 'strimzi_io_cluster!=""'
TENANT_TOPICS = 'topic!="",topic!~"__.*"'

LabelSet = tuple[tuple[str, str], ...]


@dataclass
class Series:
    labels: dict[str, str]
    samples: list[Sample]

    @property
    def key(self) -> LabelSet:
        return tuple(sorted(self.labels.items()))

    def first_seen_after(self, start: float) -> bool:
        """Whether the series has samples, none of them at or before ``start``."""
        return bool(self.samples) and min(s.at for s in self.samples) > start


class Prometheus(PrometheusClient):
    """The few reads metering makes: raw samples over a window, never ``increase()``."""

    def _range(self, selector: str, start: float, end: float) -> list[dict]:
        seconds = max(1, math.ceil(end - start))
        return self._query(f"{selector}[{seconds}s]", end)["result"]

    def samples(self, selector: str, *, start: float, end: float) -> list[Series]:
        """Every raw sample of the selected series in ``[start, end]``, as integers."""
        return [
            Series(
                labels=series["metric"],
                samples=[Sample(float(at), _integer(value)) for at, value in series["values"]],
            )
            for series in self._range(selector, start, end)
        ]

    def instants(
        self, selector: str, *, start: float, end: float
    ) -> list[tuple[dict[str, str], set[float]]]:
        """The labels and distinct values of each selected series in ``[start, end]`` whose
        values are instants (seconds since the epoch), to the millisecond: a broker that
        started a fraction of a second after a scrape must not seem to have started before it,
        or the bytes it had counted until then would be taken for part of its new count."""
        return [
            (series["metric"], {float(value) for _, value in series["values"]})
            for series in self._range(selector, start, end)
        ]

    def latest(self, selector: str, *, before: float, lookback: float) -> dict[LabelSet, int]:
        """The last value of each selected series in the ``lookback`` seconds up to ``before``."""
        expr = f"last_over_time({selector}[{max(1, math.ceil(lookback))}s])"
        data = self._query(expr, before)
        return {
            tuple(sorted(series["metric"].items())): _integer(series["value"][1])
            for series in data["result"]
        }


def _integer(value: str) -> int:
    # Prometheus writes integral floats as plain digits up to 2^53 (9 PB on one counter): the
    # common case is read as an integer directly, anything else through float.
    try:
        return int(value)
    except ValueError:
        number = float(value)
        return int(number) if math.isfinite(number) else 0


def instance_of(labels: dict[str, str]) -> tuple[str, str]:
    """The scrape target (one broker) a series comes from."""
    return labels.get("job", ""), labels.get("instance", "")


@dataclass
class Readings:
    """What a run read from Prometheus for one window (starting ``max_gap`` before it)."""

    counters: dict[str, list[Series]] = field(default_factory=dict)
    log_sizes: list[Series] = field(default_factory=list)
    # (job, instance) -> sorted instants at which that broker process started
    starts: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    up: list[Series] = field(default_factory=list)
    # Series first seen inside the window that existed before it: their last earlier value.
    earlier: dict[LabelSet, int] = field(default_factory=dict)


def read(prometheus: Prometheus, window: Window, *, max_gap: float) -> Readings:
    """Every sample of the window (and ``max_gap`` before it) that metering uses."""
    start, end = window.start - max_gap, window.end
    counters = {
        dimension: prometheus.samples(
            f"{metric}{{{STRIMZI_SERIES},{TENANT_TOPICS}}}", start=start, end=end
        )
        for dimension, metric in COUNTER_METRICS.items()
    }
    readings = Readings(
        counters=counters,
        log_sizes=prometheus.samples(
            f"{LOG_SIZE_METRIC}{{{STRIMZI_SERIES},{TENANT_TOPICS}}}", start=start, end=end
        ),
        up=prometheus.samples(f"up{{{STRIMZI_SERIES}}}", start=start, end=end),
    )
    for labels, instants in prometheus.instants(
        f"{PROCESS_START_METRIC}{{{STRIMZI_SERIES}}}", start=start, end=end
    ):
        broker = instance_of(labels)
        readings.starts[broker] = sorted(instants | set(readings.starts.get(broker, [])))
    # Series that first appear inside the window: were they there before it began?
    for dimension, metric in COUNTER_METRICS.items():
        late = {s.labels["topic"] for s in counters[dimension] if s.first_seen_after(window.start)}
        if late:
            topics = "|".join(regex_literal(topic) for topic in sorted(late))
            readings.earlier.update(
                prometheus.latest(
                    f'{metric}{{{STRIMZI_SERIES},topic=~"{topics}"}}',
                    before=start,
                    lookback=settings.SLUICE_METERING_HISTORY_SECONDS,
                )
            )
    return readings
