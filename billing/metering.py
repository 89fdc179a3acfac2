"""Metering: each cell's usage, read from its Prometheus, rolled up into the ledger by hour.

What is read (metric names and labels of Strimzi's JMX exporter rules and PodMonitor):

- bytes in and out per topic and broker, ``kafka_server_brokertopicmetrics_bytes{in,out}_total``:
  Kafka counts replication in separate meters (``replicationbytes*``), so these are client
  traffic only; Kafka's own topics (``__consumer_offsets``, ``__transaction_state``…) are
  skipped;
- log size per partition and broker, ``kafka_log_log_size``: one copy is billed (the largest
  replica's, the leader's), not the replication factor's worth;
- ``process_start_time_seconds`` of each broker, to tell a restart from a counter that merely
  went on (a restarted counter may have passed its old value by the next scrape);
- ``up`` of each broker target: an hour whose scrapes failed or are missing is incomplete.

Raw samples are read with range selectors on ``/api/v1/query``, never ``increase()`` (which
extrapolates); deltas are exact integers (billing.deltas). Series belong to a cluster by where
they come from: on a cell's shared Kafka by the topic's ``<cluster_id>.`` prefix, on a dedicated
Kafka by its namespace and ``strimzi_io_cluster``. Partition-hours come from Sluice's own record
of topics (clusters.TopicPartitions), not from Prometheus.

A run covers the hours from the cell's watermark (MeteringCursor) to now, recomputes each whole
and upserts the snapshots (billing.services.record_hours), so running it twice, or two at once,
leaves the same ledger.
"""

from __future__ import annotations

import json
import logging
import math
import urllib.error
import urllib.parse
import urllib.request
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest, Least
from django.utils import timezone

from clusters.models import Cell, Cluster, Topic, TopicPartitions
from clusters.naming import dedicated_kafka, serverless_prefix, serverless_prefix_of
from clusters.specs import Kind

from .deltas import HOUR, HourUsage, Sample, hour_start, hourly_usage
from .models import Dimension, MeteringCursor
from .services import HourSnapshot, record_hours

log = logging.getLogger(__name__)

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
INTERNAL_TOPIC_PREFIX = "__"
MS_PER_HOUR = HOUR * 1000

LabelSet = tuple[tuple[str, str], ...]


class PrometheusError(RuntimeError):
    """The cell's Prometheus could not answer; the run changes nothing and is tried again."""


@dataclass
class Series:
    labels: dict[str, str]
    samples: list[Sample]

    @property
    def key(self) -> LabelSet:
        return tuple(sorted(self.labels.items()))


class Prometheus:
    """The few calls of the HTTP API metering makes."""

    def __init__(self, url: str, *, timeout: float | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout or settings.SLUICE_PROMETHEUS_TIMEOUT_SECONDS

    def _query(self, expr: str, at: float) -> dict:
        body = urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}"}).encode()
        request = urllib.request.Request(f"{self.url}/api/v1/query", data=body)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                answer = json.load(response)
        except urllib.error.HTTPError as error:
            raise PrometheusError(f"{self.url}: {expr}: {error.read()[:500]!r}") from error
        except (OSError, ValueError) as error:
            raise PrometheusError(f"{self.url}: {error}") from error
        if answer.get("status") != "success":
            raise PrometheusError(f"{self.url}: {expr}: {answer.get('error')}")
        return answer["data"]

    def samples(self, selector: str, *, start: float, end: float) -> list[Series]:
        """Every raw sample of the selected series in ``[start, end]``."""
        seconds = max(1, math.ceil(end - start))
        data = self._query(f"{selector}[{seconds}s]", end)
        return [
            Series(
                labels=series["metric"],
                samples=[Sample(float(at), _integer(value)) for at, value in series["values"]],
            )
            for series in data["result"]
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


# Whose series is it --------------------------------------------------------------------------


@dataclass(frozen=True)
class MeteredCluster:
    pk: int
    public_id: str
    kind: str
    created_at: float
    deleted_at: float | None

    def alive_in(self, hour: int) -> bool:
        return self.created_at < hour + HOUR and (self.deleted_at is None or self.deleted_at > hour)

    @property
    def source(self) -> tuple[str, str] | None:
        """The (namespace, Kafka) whose scrapes this cluster's completeness depends on."""
        if self.kind == Kind.DEDICATED:
            return dedicated_kafka(self.public_id)
        return None  # the cell's shared Kafka


class Attribution:
    """Which cluster a series of the cell's Prometheus belongs to, if any."""

    def __init__(self, cell: Cell, clusters: list[MeteredCluster]) -> None:
        self.shared = (cell.shared_kafka_namespace, cell.shared_kafka_name)
        self.by_prefix = {serverless_prefix(c.public_id): c.pk for c in clusters}
        self.by_source = {dedicated_kafka(c.public_id): c.pk for c in clusters}

    def cluster_of(self, labels: dict[str, str]) -> int | None:
        topic = labels.get("topic", "")
        if not topic or topic.startswith(INTERNAL_TOPIC_PREFIX):
            return None
        source = (labels.get("namespace", ""), labels.get("strimzi_io_cluster", ""))
        if source == self.shared:
            return self.by_prefix.get(serverless_prefix_of(topic))
        return self.by_source.get(source)


# The arithmetic -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """Hours ``[start, end)`` by their starts (epoch seconds), computed from data up to ``end``.
    ``start`` is on an hour; ``end`` need not be (the last hour is then still going on)."""

    start: int
    end: float

    @property
    def hours(self) -> range:
        return range(self.start, math.ceil(self.end / HOUR) * HOUR, HOUR)

    def over(self, hour: int) -> bool:
        return hour + HOUR <= self.end


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


def rollup(
    readings: Readings, attribution: Attribution, window: Window, *, max_gap: float
) -> dict[tuple[int, str, int], HourUsage]:
    """Bytes in, bytes out and storage of every attributed cluster for every hour of the window,
    keyed (cluster pk, dimension, hour). Hours no series touched are absent (nothing used)."""
    usage: dict[tuple[int, str, int], HourUsage] = {}
    for dimension, series_list in readings.counters.items():
        for series in series_list:
            pk = attribution.cluster_of(series.labels)
            if pk is None or not series.samples:
                continue
            samples, starts_at_zero = _with_baseline(series, readings, window, max_gap)
            restarts = readings.starts.get(_instance(series.labels), ())
            hours = hourly_usage(
                samples,
                max_gap=max_gap,
                starts_at_zero=starts_at_zero,
                restarts=restarts,
                ongoing=False,  # which hours are over is the window's to say
            )
            for hour, part in hours.items():
                if hour < window.start or hour >= window.end:
                    continue
                entry = usage.setdefault((pk, dimension, hour), HourUsage())
                entry.quantity += part.quantity
                entry.complete &= part.complete
    for (pk, hour), byte_ms in _storage_byte_ms(readings, attribution, window, max_gap).items():
        entry = usage.setdefault((pk, Dimension.STORAGE_BYTE_HOURS, hour), HourUsage())
        entry.quantity = byte_ms // MS_PER_HOUR  # the one rounding: down, in byte-hours
    return usage


def _instance(labels: dict[str, str]) -> tuple[str, str]:
    return labels.get("job", ""), labels.get("instance", "")


def _with_baseline(
    series: Series, readings: Readings, window: Window, max_gap: float
) -> tuple[list[Sample], bool]:
    """The series' samples, and whether they count from zero. A series with no sample before
    the window began inside it: new (Kafka creates a topic's meters on its first traffic, and
    again after a restart) unless it was seen earlier, whose last value is then its baseline
    at the window's start: what grew unseen lands in the window's hours (earlier hours are
    closed), and the gap marks them incomplete."""
    samples = series.samples
    if not _first_seen_inside(series, window):
        return samples, False
    earlier = readings.earlier.get(series.key)
    if earlier is None:
        return samples, True
    return [Sample(window.start, earlier), *samples], False


def _first_seen_inside(series: Series, window: Window) -> bool:
    return bool(series.samples) and min(s.at for s in series.samples) > window.start


def _storage_byte_ms(
    readings: Readings, attribution: Attribution, window: Window, max_gap: float
) -> dict[tuple[int, int], int]:
    """Byte-milliseconds stored per cluster and hour: each sample's size holds until the next
    sample (not across a gap); of a partition's replicas, the largest one counts."""
    largest: dict[tuple[int, str, str, int], int] = {}
    max_gap_ms = round(max_gap * 1000)
    for series in readings.log_sizes:
        pk = attribution.cluster_of(series.labels)
        if pk is None:
            continue
        partition = (pk, series.labels.get("topic", ""), series.labels.get("partition", ""))
        held: dict[int, int] = defaultdict(int)
        samples = sorted(series.samples)
        for current, following in pairwise(samples):
            start_ms, end_ms = round(current.at * 1000), round(following.at * 1000)
            if end_ms - start_ms > max_gap_ms:
                continue  # unknown meanwhile; the scrape gap marks the hours incomplete
            _spread(held, current.value, start_ms, end_ms)
        for hour, byte_ms in held.items():
            if window.start <= hour < window.end:
                key = (*partition, hour)
                largest[key] = max(largest.get(key, 0), byte_ms)
    totals: dict[tuple[int, int], int] = defaultdict(int)
    for (pk, _topic, _partition, hour), byte_ms in largest.items():
        totals[pk, hour] += byte_ms
    return totals


def _spread(held: dict[int, int], value: int, start_ms: int, end_ms: int) -> None:
    while start_ms < end_ms:
        hour = start_ms // MS_PER_HOUR * HOUR
        stop = min(end_ms, (hour + HOUR) * 1000)
        held[hour] += value * (stop - start_ms)
        start_ms = stop


def scraped_hours(up: list[Series], window: Window, *, max_gap: float) -> dict[tuple, set[int]]:
    """The hours each (namespace, Kafka) was scraped throughout: every broker target up at every
    sample, with no two samples further apart than ``max_gap``."""
    by_source: dict[tuple[str, str], list[Series]] = defaultdict(list)
    for series in up:
        source = (series.labels.get("namespace", ""), series.labels.get("strimzi_io_cluster", ""))
        by_source[source].append(series)
    covered: dict[tuple, set[int]] = {}
    for source, targets in by_source.items():
        hours = set(window.hours)
        for target in targets:
            hours &= _hours_up(sorted(target.samples), window, max_gap)
        covered[source] = hours
    return covered


def _hours_up(samples: list[Sample], window: Window, max_gap: float) -> set[int]:
    times = [sample.at for sample in samples]
    hours = set()
    for hour in window.hours:
        # the samples from just before the hour to just after it
        inside = samples[bisect_right(times, hour - max_gap) : bisect_right(times, hour + HOUR)]
        if (
            inside
            and all(sample.value == 1 for sample in inside)
            and inside[0].at <= hour + max_gap
            and inside[-1].at >= hour + HOUR - max_gap
            and all(b.at - a.at <= max_gap for a, b in pairwise(inside))
        ):
            hours.add(hour)
    return hours


def partition_hours(clusters: list[MeteredCluster], window: Window) -> dict[tuple[int, int], int]:
    """Partition-hours per cluster and hour from Sluice's record of topics: every partition that
    existed at any moment of an hour counts that hour (partitions are only ever added, so the
    most an hour saw is the count in force at its end)."""
    pks = [c.pk for c in clusters]
    start = datetime.fromtimestamp(window.start, UTC)
    end = datetime.fromtimestamp(window.end, UTC)
    topics = list(
        Topic.unscoped_all_tenants.filter(cluster_id__in=pks, created_at__lt=end)
        .filter(Q(deleted_at__isnull=True) | Q(deleted_at__gt=start))
        .values_list("pk", "cluster_id", "created_at", "deleted_at", "partitions")
    )
    history: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for topic_pk, since, partitions in TopicPartitions.unscoped_all_tenants.filter(
        topic_id__in=[t[0] for t in topics], since__lt=end
    ).values_list("topic_id", "since", "partitions"):
        history[topic_pk].append((since.timestamp(), partitions))
    alive = {c.pk: c for c in clusters}
    totals: dict[tuple[int, int], int] = defaultdict(int)
    for topic_pk, cluster_pk, created_at, deleted_at, partitions in topics:
        born, gone = created_at.timestamp(), deleted_at.timestamp() if deleted_at else None
        changes = sorted(history.get(topic_pk, [])) or [(born, partitions)]
        for hour in window.hours:
            if born >= hour + HOUR or (gone is not None and gone <= hour):
                continue
            if not alive[cluster_pk].alive_in(hour):
                continue
            in_force = [count for since, count in changes if since < hour + HOUR]
            totals[cluster_pk, hour] += max(in_force, default=changes[0][1])
    return totals


# A run ----------------------------------------------------------------------------------------


def metered_clusters(cell: Cell, window: Window) -> list[MeteredCluster]:
    start = datetime.fromtimestamp(window.start, UTC)
    end = datetime.fromtimestamp(window.end, UTC)
    rows = (
        Cluster.unscoped_all_tenants.filter(cell=cell, created_at__lt=end)
        .filter(Q(deleted_at__isnull=True) | Q(deleted_at__gt=start))
        .values_list("pk", "public_id", "cluster_type__kind", "created_at", "deleted_at")
    )
    return [
        MeteredCluster(
            pk, public_id, kind, created.timestamp(), deleted.timestamp() if deleted else None
        )
        for pk, public_id, kind, created, deleted in rows
    ]


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
    for series in prometheus.samples(
        f"{PROCESS_START_METRIC}{{{STRIMZI_SERIES}}}", start=start, end=end
    ):
        instants = {float(sample.value) for sample in series.samples}
        readings.starts[_instance(series.labels)] = sorted(
            instants | set(readings.starts.get(_instance(series.labels), []))
        )
    # Series that first appear inside the window: were they there before it began?
    for dimension, metric in COUNTER_METRICS.items():
        late = {s.labels["topic"] for s in counters[dimension] if _first_seen_inside(s, window)}
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


def regex_literal(text: str) -> str:
    """A topic name (letters, digits, ``._-``) matched literally by a PromQL regex."""
    return "".join(f"\\\\{c}" if not c.isalnum() and c != "_" else c for c in text)


def snapshots(
    cell: Cell,
    clusters: list[MeteredCluster],
    window: Window,
    readings: Readings | None,
    *,
    max_gap: float,
) -> list[HourSnapshot]:
    """Every (cluster, dimension, hour) of the window, zeros included: a zero row says "measured
    nothing", an absent one "not measured". Without readings (a cell without Prometheus) only
    partition-hours, which Sluice knows itself."""
    partitions = partition_hours(clusters, window)
    usage, scraped = {}, {}
    if readings is not None:
        usage = rollup(readings, Attribution(cell, clusters), window, max_gap=max_gap)
        scraped = scraped_hours(readings.up, window, max_gap=max_gap)
    shared = (cell.shared_kafka_namespace, cell.shared_kafka_name)
    result = []
    for cluster in clusters:
        covered = scraped.get(cluster.source or shared, set())
        for hour in window.hours:
            if not cluster.alive_in(hour):
                continue
            at = datetime.fromtimestamp(hour, UTC)
            over = window.over(hour)
            result.append(
                HourSnapshot(
                    cluster.pk,
                    Dimension.PARTITION_HOURS,
                    at,
                    partitions.get((cluster.pk, hour), 0),
                    over,
                )
            )
            if readings is None:
                continue
            for dimension in (*COUNTER_METRICS, Dimension.STORAGE_BYTE_HOURS):
                entry = usage.get((cluster.pk, dimension, hour), HourUsage())
                complete = over and entry.complete and hour in covered
                result.append(HourSnapshot(cluster.pk, dimension, at, entry.quantity, complete))
    return result


def cursor_for(cell: Cell) -> MeteringCursor:
    """The cell's cursor; a new one starts at the hour its first cluster was created."""
    first = (
        Cluster.unscoped_all_tenants.filter(cell=cell)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    cursor, _ = MeteringCursor.objects.get_or_create(
        cell=cell, defaults={"watermark": hour_start(first or timezone.now())}
    )
    return cursor


@dataclass(frozen=True)
class RunResult:
    window: Window
    written: int
    watermark: datetime


def collect_cell(cell: Cell, *, now: datetime | None = None) -> RunResult:
    """Recompute the cell's open hours (from its watermark to ``now``) into the ledger, then
    move the watermark to ``now`` less the lateness allowed: hours before it are closed."""
    now = now or timezone.now()
    max_gap = settings.SLUICE_METERING_MAX_GAP_SECONDS
    cursor = cursor_for(cell)
    start = hour_start(cursor.watermark)
    end = min(now, start + timedelta(hours=settings.SLUICE_METERING_MAX_WINDOW_HOURS))
    window = Window(int(start.timestamp()), end.timestamp())
    if end <= start:  # a run that began before the last one moved the watermark on
        return RunResult(window, 0, cursor.watermark)
    clusters = metered_clusters(cell, window)
    readings = None
    if cell.prometheus_url and clusters:
        try:
            readings = read(Prometheus(cell.prometheus_url), window, max_gap=max_gap)
        except PrometheusError as error:
            MeteringCursor.objects.filter(pk=cursor.pk).update(
                last_run_at=now, last_error=str(error)[:2000]
            )
            raise
    written = record_hours(snapshots(cell, clusters, window, readings, max_gap=max_gap), now=end)
    watermark = end - timedelta(seconds=settings.SLUICE_METERING_LATENESS_SECONDS)
    # Never backwards: a slower run that started earlier must not undo a later one.
    MeteringCursor.objects.filter(pk=cursor.pk).update(
        watermark=Greatest(F("watermark"), watermark), last_run_at=now, last_error=""
    )
    cursor.refresh_from_db(fields=["watermark"])
    return RunResult(window, written, cursor.watermark)


@transaction.atomic
def reopen(cell: Cell, since: datetime) -> MeteringCursor:
    """Move the cell's watermark back to ``since`` (never forward): the next run recomputes the
    hours from there, e.g. after samples arrived later than the lateness allowed. Invoiced hours
    still only change through adjustments."""
    cursor = cursor_for(cell)
    MeteringCursor.objects.filter(pk=cursor.pk).update(watermark=Least(F("watermark"), since))
    cursor.refresh_from_db(fields=["watermark"])
    return cursor
