"""A cluster's (or one topic's) live metrics: ingress and egress, requests, storage and
partitions over the last hour, a point a minute, read from its cell's Prometheus
(``query_range``), each beside the tier's limit, and how they read on the page.

A minute the Prometheus cannot vouch for has no point, never a zero: the cell has no Prometheus
(the simulated data plane), the query failed, or none of the Kafka's brokers was scraped then.
A minute whose brokers were scraped but whose topics had no traffic is a true zero.

What the series are (Strimzi's JMX exporter rules, as metering reads them): client bytes in and
out per topic, produce and fetch requests per topic, log size per partition and broker (a
partition's largest replica counts, as billed: one copy). A dedicated cluster's series are its
own Kafka's; a serverless cluster's are its topics on the cell's shared Kafka, by prefix.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings

from .models import GB, MB, Cluster
from .naming import dedicated_kafka, serverless_prefix
from .presentation import plain
from .prometheus import PrometheusClient, PrometheusError, regex_literal

WINDOW_SECONDS = 3600
STEP_SECONDS = 60
# rate() over two steps: two samples or more at any scrape interval up to a minute.
RATE_RANGE = "2m"
TENANT_TOPICS = 'topic!="",topic!~"__.*"'
BYTES_IN = "kafka_server_brokertopicmetrics_bytesin_total"
BYTES_OUT = "kafka_server_brokertopicmetrics_bytesout_total"
REQUESTS = "kafka_server_brokertopicmetrics_total(produce|fetch)requests_total"
LOG_SIZE = "kafka_log_log_size"
NOT_MEASURED = "not measured"


@dataclass(frozen=True)
class Measure:
    key: str
    label: str
    unit: str  # "bytes/s", "requests/s", "bytes" or "partitions"
    limit: int | None
    # (seconds, value) a minute, None for a minute not measured; None for none at all
    points: list[tuple[float, float | None]] | None

    @property
    def latest(self) -> float | None:
        return self.points[-1][1] if self.points else None


@dataclass(frozen=True)
class Source:
    """Which series are the cluster's: the labels of its Kafka, and of its topics on it."""

    kafka: str
    topics: str

    @property
    def series(self) -> str:
        return f"{self.kafka},{self.topics}"


def cluster_source(cluster: Cluster, *, topic: str | None = None) -> Source:
    """The cluster's series, or those of one of its topics (``topic``: its Kafka name)."""
    if cluster.is_dedicated:
        namespace, kafka = dedicated_kafka(cluster.public_id)
        topics = TENANT_TOPICS
    else:
        namespace, kafka = cluster.cell.shared_kafka_namespace, cluster.cell.shared_kafka_name
        topics = f'topic=~"{regex_literal(serverless_prefix(cluster.public_id))}.+"'
    if topic is not None:
        topics = f'topic=~"{regex_literal(topic)}"'
    return Source(kafka=f'namespace="{namespace}",strimzi_io_cluster="{kafka}"', topics=topics)


def queries(source: Source) -> dict[str, str]:
    # "or" the zero of a minute whose brokers were scraped: no series then is no traffic.
    scraped = f"on() (0 * max(up{{{source.kafka}}} == 1))"
    sizes = f"max by (topic, partition) ({LOG_SIZE}{{{source.series}}})"
    return {
        "ingress": f"sum(rate({BYTES_IN}{{{source.series}}}[{RATE_RANGE}])) or {scraped}",
        "egress": f"sum(rate({BYTES_OUT}{{{source.series}}}[{RATE_RANGE}])) or {scraped}",
        "requests": (
            f'sum(rate({{__name__=~"{REQUESTS}",{source.series}}}[{RATE_RANGE}])) or {scraped}'
        ),
        "storage": f"sum({sizes}) or {scraped}",
        "partitions": f"count({sizes}) or {scraped}",
    }


def limits(cluster: Cluster) -> dict[str, int]:
    tier, units = cluster.tier, cluster.capacity_units
    return {
        "ingress": tier.ingress_mbps * MB * units,
        "egress": tier.egress_mbps * MB * units,
        "requests": tier.max_requests_per_second * units,
        "storage": tier.max_storage_gb * GB * units,
        "partitions": tier.max_partitions * units,
    }


MEASURES = (
    ("ingress", "Ingress", "bytes/s"),
    ("egress", "Egress", "bytes/s"),
    ("requests", "Requests", "requests/s"),
    ("storage", "Storage", "bytes"),
    ("partitions", "Partitions", "partitions"),
)


def read(
    cluster: Cluster,
    *,
    topic: str | None = None,
    keys: tuple[str, ...] = tuple(key for key, _, _ in MEASURES),
    now: float | None = None,
) -> list[Measure]:
    """The last hour of the cluster's (or topic's) measures named by ``keys``, a point a
    minute, the last one at ``now``."""
    end = now if now is not None else time.time()
    start = end - WINDOW_SECONDS + STEP_SECONDS
    url = cluster.cell.prometheus_url
    client = PrometheusClient(url, timeout=settings.SLUICE_LIVE_METRICS_TIMEOUT_SECONDS)
    expressions, caps = queries(cluster_source(cluster, topic=topic)), limits(cluster)
    measures = []
    for key, label, unit in MEASURES:
        if key not in keys:
            continue
        points = None
        if url:
            try:
                answer = client.query_range(
                    expressions[key], start=start, end=end, step=STEP_SECONDS
                )
            except PrometheusError:
                pass
            else:
                points = _per_minute(answer, start, end)
        limit = caps[key] if topic is None else None
        measures.append(Measure(key=key, label=label, unit=unit, limit=limit, points=points))
    return measures


def _per_minute(answer: list[dict], start: float, end: float) -> list[tuple[float, float | None]]:
    values = {
        round(float(at), 3): float(value) for series in answer for at, value in series["values"]
    }
    steps = round((end - start) / STEP_SECONDS)
    moments = [start + step * STEP_SECONDS for step in range(steps + 1)]
    # Prometheus answers at start + k * step, as written back to it (to the millisecond).
    return [(at, values.get(round(at, 3))) for at in moments]


# How they read -------------------------------------------------------------------------------


def amount(value: float, unit: str) -> str:
    """e.g. "1.25 MB/s", "0 MB/s", "12.5 requests/s", "3.2 GB", "48 partitions": traffic in
    decimal MB, storage in GB below a TB, to three significant digits."""
    if unit == "bytes/s":
        return f"{_significant(value / MB)} MB/s"
    if unit == "bytes":
        if value >= 1000 * GB:
            return f"{_significant(value / (1000 * GB))} TB"
        if value >= GB:
            return f"{_significant(value / GB)} GB"
        return f"{_significant(value / MB)} MB"
    if unit == "partitions":
        return f"{round(value):,} partition{'' if round(value) == 1 else 's'}"
    return f"{_significant(value)} {unit}"


def _significant(value: float) -> str:
    number = Decimal(str(value))
    places = 0 if number >= 100 else 1 if number >= 10 else 2
    text = plain(round(number, places))
    whole, dot, fraction = text.partition(".")
    return f"{int(whole):,}{dot}{fraction}"


def _chart_value(value: float | None, unit: str) -> float | None:
    # Drawn in the unit the axis reads: MB/s, GB, requests/s, partitions.
    if value is None:
        return None
    scale = {"bytes/s": MB, "bytes": GB}.get(unit, 1)
    return round(value / scale, 6)


def measure_card(measure: Measure) -> dict:
    """One measure as the page shows it: now, the hour's peak, the limit and the share of it,
    and the series for its chart (``data-chart``, read by sluice/live-metrics.js)."""
    limit_text = amount(measure.limit, measure.unit) if measure.limit else ""
    card = {"key": measure.key, "label": measure.label, "limit": limit_text}
    measured = [value for _at, value in measure.points or [] if value is not None]
    if not measured:
        return card | {"measured": False, "now": NOT_MEASURED}
    latest = measure.latest
    near_limit = bool(measure.limit) and max(measured) * 10 >= measure.limit
    axis = {"bytes/s": "MB/s", "bytes": "GB"}.get(measure.unit, measure.unit)
    chart = {
        "label": f"{measure.label} ({axis})",
        "labels": [f"{datetime.fromtimestamp(at, UTC):%H:%M}" for at, _ in measure.points],
        "values": [_chart_value(value, measure.unit) for _, value in measure.points],
        # Drawn once the hour comes within a tenth of it, where it is worth seeing (as the
        # usage chart does): below that it would flatten the line.
        "limit": _chart_value(measure.limit, measure.unit) if near_limit else None,
    }
    share = ""
    if measure.limit and latest is not None:
        share = f"{plain(round(Decimal(str(latest)) * 100 / measure.limit, 1))}%"
    return card | {
        "measured": True,
        "now": amount(latest, measure.unit) if latest is not None else NOT_MEASURED,
        "peak": amount(max(measured), measure.unit),
        "share": share,
        "gaps": any(value is None for _, value in measure.points),
        "chart": json.dumps(chart, separators=(",", ":")),
    }


def live_panel(cluster: Cluster, *, topic: str | None = None, now: float | None = None) -> dict:
    """The cluster's (or topic's) measures as the page's live panel shows them, and why those
    not measured are not."""
    keys = ("ingress", "egress", "storage") if topic else tuple(key for key, _, _ in MEASURES)
    measures = read(cluster, topic=topic, keys=keys, now=now)
    if not cluster.cell.prometheus_url:
        reason = "This cell has no Prometheus (the simulated data plane): nothing is measured."
    else:
        reason = "The cell's Prometheus did not answer, or did not scrape the brokers."
    return {
        "cards": [measure_card(measure) for measure in measures],
        "reason": reason,
        "updated": datetime.fromtimestamp(now if now is not None else time.time(), UTC),
    }
