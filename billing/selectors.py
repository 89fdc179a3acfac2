"""Reads of the billing app: usage over the ledger, bucketed for charts.

Always given the tenant (an organization, or one of its clusters) and read through the
tenant-scoped managers, so they run only with that organization in scope.

What a chart gets, per dimension, per bucket of the window:

- **Buckets** are UTC hours or UTC days (24 hours), truncated in the database (``TruncHour`` /
  ``TruncDay`` in UTC). The window is ``[start, end)``, widened to whole buckets (``start``
  floored, ``end`` raised to the next boundary), and every bucket in it is returned, with 0
  where the ledger has nothing, so a chart has no holes. By default it is the last 24 hours by
  hour, or the last 30 days by day, up to and including the current (unfinished) bucket. One
  request may span at most 31 days of hours (744 buckets) or 400 days of days.
- **quantity** is the sum of the ledger's hours in the bucket, in the dimension's base unit
  (bytes, byte-hours, partition-hours, cluster-hours, capacity-unit-hours), *with adjustments
  folded in*: an hour that changed after it was invoiced keeps its invoiced row and gets a
  ``UsageAdjustment`` billed on the next invoice; a chart shows what was used, so the
  adjustment counts in the bucket of the hour it corrects. ``adjustment`` says how much of
  ``quantity`` came from adjustments.
- **complete** is true when no more usage is expected to land in the bucket: every hour of it
  during which the cluster existed (from the hour it was created, to the hour it was deleted)
  has a ledger row, and every row is ``complete``. Hours before a cluster existed or after it
  was deleted are not expected, so a cluster's first day can be complete; the current hour,
  future hours and hours with missing samples are not, so the bucket holding them is not. For
  an organization, a bucket is complete when it is for each of its clusters (deleted ones
  included, for the hours they lived). A time dimension (cluster-hours, capacity-unit-hours) is
  expected only for the hours a cluster's tier was priced by it (billing.time_dimensions): a
  Dedicated cluster's cluster-hours are not missing, they do not apply.
- **limit_per_bucket** is the most a cluster's tier lets it use in one bucket, from its
  current tier and capacity units (``clusters.tiers.limits_of``, the limits the data plane
  enforces): ingress / egress bytes per second times the bucket's seconds; the partition limit
  times the bucket's hours (partition-hours); the storage limit times the bucket's hours
  (byte-hours). The time dimensions have ``None``: a tier limits what a cluster does, not how
  long it lives.
  An organization's usage has ``None``: tier limits bind each cluster on its own, and their sum
  is no limit anything enforces (the organization's own quotas count clusters and partitions,
  not usage), so no line is better than a misleading one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from clusters.models import METERED_DIMENSIONS, TIME_DIMENSIONS, Cluster, ClusterSize, Dimension
from clusters.tiers import limits_of
from foundation.errors import InvalidInput
from tenants.models import Organization

from .attribution import MeteredCluster, as_metered
from .deltas import Window, hour_start
from .models import UsageAdjustment, UsageHour
from .time_dimensions import time_hours

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

GRANULARITIES = ("hour", "day")
BUCKET_LENGTH = {"hour": HOUR, "day": DAY}
DEFAULT_SPAN = {"hour": timedelta(hours=24), "day": timedelta(days=30)}
MAX_SPAN = {"hour": timedelta(days=31), "day": timedelta(days=400)}
_TRUNC = {"hour": TruncHour, "day": TruncDay}

DIMENSIONS: tuple[str, ...] = tuple(METERED_DIMENSIONS)
UNITS = {
    Dimension.INGRESS_BYTES: "bytes",
    Dimension.EGRESS_BYTES: "bytes",
    Dimension.STORAGE_BYTE_HOURS: "byte-hours",
    Dimension.PARTITION_HOURS: "partition-hours",
    Dimension.CLUSTER_HOURS: "cluster-hours",
    Dimension.CAPACITY_UNIT_HOURS: "capacity-unit-hours",
}


@dataclass(frozen=True)
class UsageWindow:
    """``[start, end)`` in whole buckets of ``granularity``, UTC."""

    granularity: str
    start: datetime
    end: datetime

    @property
    def bucket_length(self) -> timedelta:
        return BUCKET_LENGTH[self.granularity]

    def bucket_starts(self) -> list[datetime]:
        starts, at = [], self.start
        while at < self.end:
            starts.append(at)
            at += self.bucket_length
        return starts


@dataclass(frozen=True)
class UsageBucket:
    start: datetime
    quantity: int  # ledger hours plus adjustments
    complete: bool
    adjustment: int  # the part of quantity that adjustments made
    # Whether anything was recorded for it: an incomplete bucket with nothing recorded was not
    # measured (a cell without Prometheus, scrapes that failed), which is not zero.
    recorded: bool = True


@dataclass(frozen=True)
class DimensionUsage:
    dimension: str
    unit: str
    limit_per_bucket: int | None
    buckets: list[UsageBucket]


@dataclass(frozen=True)
class Usage:
    cluster: Cluster | None  # None: the whole organization
    granularity: str
    start: datetime
    end: datetime
    dimensions: list[DimensionUsage]


# The window -----------------------------------------------------------------------------------


def _floor(moment: datetime, granularity: str) -> datetime:
    moment = hour_start(moment)
    return moment.replace(hour=0) if granularity == "day" else moment


def _ceil(moment: datetime, granularity: str) -> datetime:
    floored = _floor(moment, granularity)
    return floored if floored == moment else floored + BUCKET_LENGTH[granularity]


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.utcoffset() is None:
        raise InvalidInput(f"{field} needs a time zone offset (RFC 3339)", field=field)
    return value


def usage_window(
    *,
    granularity: str = "hour",
    start: datetime | None = None,
    end: datetime | None = None,
    now: datetime | None = None,
) -> UsageWindow:
    """The window a chart covers; raises ``InvalidInput`` (with the ``field``) when it cannot.

    ``end`` defaults to the end of the current bucket, ``start`` to ``end`` less the default
    span (24 hours by hour, 30 days by day). Both are widened to whole buckets."""
    if granularity not in GRANULARITIES:
        raise InvalidInput(
            f"granularity must be one of {', '.join(GRANULARITIES)}", field="granularity"
        )
    start, end = _aware(start, "start"), _aware(end, "end")
    if start is not None and end is not None and end <= start:
        raise InvalidInput("end must be after start", field="end")
    end = _ceil(end or now or timezone.now(), granularity)
    start = _floor(start, granularity) if start is not None else end - DEFAULT_SPAN[granularity]
    if end <= start:
        raise InvalidInput("end must be after start", field="end")
    longest = MAX_SPAN[granularity]
    if end - start > longest:
        buckets = longest // BUCKET_LENGTH[granularity]
        raise InvalidInput(
            f"At most {longest.days} days ({buckets} buckets) by {granularity} in one request; "
            f"this asks for {(end - start) / DAY:g} days. Shorten the range"
            + (" or use granularity=day" if granularity == "hour" else ""),
            field="end",
        )
    return UsageWindow(granularity=granularity, start=start, end=end)


def _dimensions(dimensions: Iterable[str] | None) -> list[str]:
    if not dimensions:
        return list(DIMENSIONS)
    chosen = list(dict.fromkeys(dimensions))  # in the order asked, once each
    unknown = [d for d in chosen if d not in DIMENSIONS]
    if unknown:
        raise InvalidInput(
            f"Unknown dimension {unknown[0]!r}: one of {', '.join(DIMENSIONS)}", field="dimension"
        )
    return chosen


# Limits ---------------------------------------------------------------------------------------


def limits_per_bucket(*, cluster: Cluster, granularity: str) -> dict[str, int]:
    """The most ``cluster`` may use of each dimension in one bucket, at its tier's limits."""
    length = BUCKET_LENGTH[granularity]
    seconds, hours = int(length.total_seconds()), length // HOUR
    limits = limits_of(cluster.tier, cluster.capacity_units)
    return {
        Dimension.INGRESS_BYTES: limits.ingress_bytes_per_second * seconds,
        Dimension.EGRESS_BYTES: limits.egress_bytes_per_second * seconds,
        Dimension.STORAGE_BYTE_HOURS: limits.max_storage_bytes * hours,
        Dimension.PARTITION_HOURS: limits.max_partitions * hours,
    }


# Usage ----------------------------------------------------------------------------------------


def cluster_usage(
    *, cluster: Cluster, window: UsageWindow, dimensions: Sequence[str] | None = None
) -> Usage:
    """One cluster's usage over ``window``, with its tier's limit per bucket."""
    dimensions = _dimensions(dimensions)
    rows = UsageHour.objects.filter(organization_id=cluster.organization_id, cluster=cluster)
    adjustments = UsageAdjustment.objects.filter(
        organization_id=cluster.organization_id, cluster=cluster
    )
    limits = limits_per_bucket(cluster=cluster, granularity=window.granularity)
    return _usage(
        cluster=cluster,
        window=window,
        dimensions=dimensions,
        rows=rows,
        adjustments=adjustments,
        lives=as_metered(Cluster.objects.filter(pk=cluster.pk)),
        limits=limits,
    )


def organization_usage(
    *, organization: Organization, window: UsageWindow, dimensions: Sequence[str] | None = None
) -> Usage:
    """All of an organization's clusters together (deleted ones included), without a limit."""
    dimensions = _dimensions(dimensions)
    lived = Cluster.objects.filter(organization=organization, created_at__lt=window.end).filter(
        Q(deleted_at__isnull=True) | Q(deleted_at__gt=window.start)
    )
    return _usage(
        cluster=None,
        window=window,
        dimensions=dimensions,
        rows=UsageHour.objects.filter(organization=organization),
        adjustments=UsageAdjustment.objects.filter(organization=organization),
        lives=as_metered(lived),
        limits={},
    )


def _usage(
    *,
    cluster: Cluster | None,
    window: UsageWindow,
    dimensions: list[str],
    rows: QuerySet[UsageHour],
    adjustments: QuerySet[UsageAdjustment],
    lives: list[MeteredCluster],
    limits: dict[str, int],
) -> Usage:
    bucket = _TRUNC[window.granularity]("hour", tzinfo=UTC)
    in_window = {"dimension__in": dimensions, "hour__gte": window.start, "hour__lt": window.end}
    # A row counts towards completeness only for an hour its cluster lived.
    lived = Q(hour__gte=TruncHour("cluster__created_at", tzinfo=UTC)) & (
        Q(cluster__deleted_at__isnull=True) | Q(hour__lt=F("cluster__deleted_at"))
    )
    recorded = (
        rows.filter(**in_window)
        .annotate(bucket=bucket)
        .order_by()
        .values("dimension", "bucket")
        .annotate(
            quantity=Sum("quantity"),
            incomplete=Count("pk", filter=Q(complete=False)),
            lived=Count("pk", filter=lived),
        )
    )
    adjusted = (
        adjustments.filter(**in_window)
        .annotate(bucket=bucket)
        .order_by()
        .values("dimension", "bucket")
        .annotate(quantity=Sum("quantity"))
    )
    by_key = {(r["dimension"], r["bucket"]): r for r in recorded}
    adjustment_by_key = {(r["dimension"], r["bucket"]): r["quantity"] for r in adjusted}
    expected = _expected_hours(window, lives)
    expected_time = _expected_time_hours(window, lives, dimensions)
    usage = []
    for dimension in dimensions:
        buckets = []
        for start in window.bucket_starts():
            row = by_key.get((dimension, start))
            adjustment = adjustment_by_key.get((dimension, start), 0)
            ledger = row["quantity"] if row else 0
            if dimension in TIME_DIMENSIONS:
                hours = expected_time.get((dimension, start), 0)
            else:
                hours = expected[start]
            if row is None:
                complete = hours == 0  # nothing lived then: nothing is missing
            else:
                complete = row["incomplete"] == 0 and row["lived"] == hours
            buckets.append(
                UsageBucket(
                    start=start,
                    quantity=ledger + adjustment,
                    complete=complete,
                    adjustment=adjustment,
                    recorded=row is not None or (dimension, start) in adjustment_by_key,
                )
            )
        usage.append(
            DimensionUsage(
                dimension=dimension,
                unit=UNITS[dimension],
                limit_per_bucket=limits.get(dimension),
                buckets=buckets,
            )
        )
    return Usage(
        cluster=cluster,
        granularity=window.granularity,
        start=window.start,
        end=window.end,
        dimensions=usage,
    )


def _expected_hours(window: UsageWindow, lives: list[MeteredCluster]) -> dict[datetime, int]:
    """Per bucket, how many cluster-hours the ledger should hold (per dimension)."""
    spans = [
        (
            _floor(datetime.fromtimestamp(life.created_at, UTC), "hour"),
            _ceil(datetime.fromtimestamp(life.deleted_at, UTC), "hour")
            if life.deleted_at
            else None,
        )
        for life in lives
    ]
    expected: dict[datetime, int] = defaultdict(int)
    for start in window.bucket_starts():
        end = start + window.bucket_length
        for born, died in spans:
            lo, hi = max(start, born), min(end, died) if died else end
            if hi > lo:
                expected[start] += (hi - lo) // HOUR
    return expected


def _expected_time_hours(
    window: UsageWindow, lives: list[MeteredCluster], dimensions: list[str]
) -> dict[tuple[str, datetime], int]:
    """Per time dimension and bucket, how many hours the ledger should hold: those the
    clusters' tiers were priced by the dimension."""
    if not lives or not any(dimension in TIME_DIMENSIONS for dimension in dimensions):
        return {}
    hours = time_hours(
        lives,
        Window(int(window.start.timestamp()), window.end.timestamp()),
        history=ClusterSize.objects.all(),
    )
    expected: dict[tuple[str, datetime], int] = defaultdict(int)
    for _cluster, dimension, hour in hours:
        expected[dimension, _floor(datetime.fromtimestamp(hour, UTC), window.granularity)] += 1
    return expected


def has_traffic(organization: Organization) -> bool:
    """Whether any client of the organization has produced or consumed (a metered hour of bytes
    in or out): the last of its first steps."""
    return UsageHour.objects.filter(
        organization=organization,
        dimension__in=[Dimension.INGRESS_BYTES, Dimension.EGRESS_BYTES],
        quantity__gt=0,
    ).exists()
