"""The metering run: each cell's usage rolled up into the ledger by hour.

What the samples read from the cell's Prometheus (billing.prometheus) add up to, per cluster
(billing.attribution) and hour: bytes in and out from counter deltas (exact integers,
reset-aware: billing.deltas); storage from log sizes, one copy billed (the largest replica's,
the leader's), not the replication factor's worth; partition-hours from Sluice's own record of
topics (clusters.TopicPartitions), and cluster-hours and capacity-unit-hours from its record
of cluster sizes (billing.time_dimensions), not from Prometheus. An hour whose scrapes failed or
are missing (``up``) is incomplete; those Sluice records itself are complete once the hour is
over.

A run covers the hours from the cell's watermark (MeteringCursor) to now, recomputes each whole
and upserts the snapshots (billing.services.record_hours), so running it twice, or two at once,
leaves the same ledger.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest, Least
from django.utils import timezone

from clusters.models import TIME_DIMENSIONS, Cell, Cluster, Dimension, Topic, TopicPartitions
from clusters.prometheus import PrometheusError

from .attribution import (
    Attribution,
    MeteredCluster,
    metered_clusters,
    shared_source,
    source_of,
)
from .deltas import HOUR, HourUsage, Sample, Window, hour_start, hourly_usage
from .models import MeteringCursor
from .prometheus import (
    COUNTER_METRICS,
    Prometheus,
    Readings,
    Series,
    instance_of,
    read,
)
from .services import HourSnapshot, record_hours
from .time_dimensions import time_hours

MS_PER_HOUR = HOUR * 1000


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
            restarts = readings.starts.get(instance_of(series.labels), ())
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


def _with_baseline(
    series: Series, readings: Readings, window: Window, max_gap: float
) -> tuple[list[Sample], bool]:
    """The series' samples, and whether they count from zero. A series with no sample before
    the window began inside it: new (Kafka creates a topic's meters on its first traffic, and
    again after a restart) unless it was seen earlier, whose last value is then its baseline
    at the window's start: what grew unseen lands in the window's hours (earlier hours are
    closed), and the gap marks them incomplete."""
    samples = series.samples
    if not series.first_seen_after(window.start):
        return samples, False
    earlier = readings.earlier.get(series.key)
    if earlier is None:
        return samples, True
    return [Sample(window.start, earlier), *samples], False


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
        by_source[source_of(series.labels)].append(series)
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
    start, end = window.datetimes
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
    partition-hours and the time dimensions, which Sluice knows itself. A time dimension a
    cluster's tier is not priced by has no row (not zero: it does not apply)."""
    partitions = partition_hours(clusters, window)
    timed = time_hours(clusters, window)
    usage, scraped = {}, {}
    if readings is not None:
        usage = rollup(readings, Attribution(cell, clusters), window, max_gap=max_gap)
        scraped = scraped_hours(readings.up, window, max_gap=max_gap)
    shared = shared_source(cell)
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
            for dimension in TIME_DIMENSIONS:
                quantity = timed.get((cluster.pk, dimension, hour))
                if quantity is not None:
                    result.append(HourSnapshot(cluster.pk, dimension, at, quantity, over))
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


def window_recompute(cell: Cell, window: Window, *, computed_at: datetime, max_gap: float) -> int:
    """Recompute every hour of the window into the ledger (read, roll up, upsert), whatever the
    cell's watermark says; returns how many rows were written. ``computed_at`` is when the data
    read ends (the window's end): a row computed from later data is left as it is."""
    clusters = metered_clusters(cell, window)
    readings = None
    if cell.prometheus_url and clusters:
        readings = read(Prometheus(cell.prometheus_url), window, max_gap=max_gap)
    return record_hours(
        snapshots(cell, clusters, window, readings, max_gap=max_gap), now=computed_at
    )


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
    try:
        written = window_recompute(cell, window, computed_at=end, max_gap=max_gap)
    except PrometheusError as error:
        MeteringCursor.objects.filter(pk=cursor.pk).update(
            last_run_at=now, last_error=str(error)[:2000]
        )
        raise
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
