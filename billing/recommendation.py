"""Tier recommendation: what a cluster's last 30 days would have cost on each offered tier
that can carry what it actually did, and the cheapest of them.

- **The window**: the 720 whole hours (30 days) up to the cluster's latest complete ledger hour
  (every row of that hour complete), or fewer when the cluster has been at its current tier and
  size for less (from the first whole hour after its latest ClusterSize took effect), so the
  window holds only hours it ran as it is now, and what it paid is what its current tier costs.
  It takes at least ``MIN_COMPLETE_HOURS`` (a week) of complete hours in it; fewer is "not
  enough history", saying how many there are.
- **Peaks**: the busiest hour of each dimension in the window, from the ledger: bytes written
  and read in an hour over 3,600 s (MB/s of 10^6 bytes, as the catalog's limits), the most
  partitions in an hour (partition-hours count each partition once per hour), the most stored
  (storage byte-hours of an hour are the bytes held on average through it); and the longest
  retention of its live topics. A tier fits when each peak plus
  ``SLUICE_RECOMMENDATION_HEADROOM_PERCENT`` is within its limits (``clusters.tiers.limits_of``)
  and the retention within its maximum; for Dedicated, at the fewest capacity units that do.
- **Money**: every cost is ``rating.rate`` with the real price book, as invoices are. What the
  cluster cost is its ledger hours rated as recorded; what it would have cost on a candidate is
  the same hours' traffic, storage and partitions with its tier's time dimensions
  (cluster-hours, capacity-unit-hours) for every hour it lived, the estimator's
  ``time_quantities``, rated on a tier history that puts it on the candidate throughout. A
  window's cost is its lines' cents (what an invoice of them charges); a month is 730 hours, the
  window's cents times 730 over its hours, rounded down to the cent. Usage only: adjustments to
  invoiced hours are not in it.
- **The answer**: the cheapest fitting option; ``switch`` when its month costs less than the
  current one's, else ``stay``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Count, Max, Q

from clusters.models import METERED_DIMENSIONS, TIME_DIMENSIONS, Cluster, Dimension, Tier
from clusters.selectors import live_topics
from clusters.specs import Kind
from clusters.tiers import limits_of

from .estimates import HOURS_PER_MONTH, SECONDS_PER_HOUR, time_quantities
from .models import UsageHour
from .rating import HOUR, LedgerRow, Line, TierHistory, price_spans, rate
from .rating_inputs import price_book

WINDOW_HOURS = 720
MIN_COMPLETE_HOURS = 168
MS_PER_HOUR = SECONDS_PER_HOUR * 1000
# What a tier's limits are checked for, in the order an answer names them.
LIMIT_NAMES = ("ingress", "egress", "partitions", "storage", "retention")


class Verdict(models.TextChoices):
    SWITCH = "switch", "A cheaper tier fits"
    STAY = "stay", "No tier that fits costs less"
    NOT_ENOUGH_HISTORY = "not_enough_history", "Fewer than a week of complete hours"


@dataclass(frozen=True)
class Peaks:
    """The busiest hour of each dimension in the window, in the ledger's units."""

    ingress_bytes_per_hour: int
    egress_bytes_per_hour: int
    partitions: int
    storage_bytes: int
    retention_ms: int  # the longest of the live topics' (0: no topic)

    @property
    def ingress_mbps(self) -> Decimal:
        return _mbps(self.ingress_bytes_per_hour)

    @property
    def egress_mbps(self) -> Decimal:
        return _mbps(self.egress_bytes_per_hour)


@dataclass(frozen=True)
class Option:
    """The window's hours on ``tier`` at ``capacity_units``, rated."""

    tier: Tier
    capacity_units: int
    lines: list[Line]
    hours: int

    @property
    def window_cents(self) -> int:
        return sum(line.cents for line in self.lines)

    @property
    def window_micros(self) -> int:
        return sum(line.micros for line in self.lines)

    @property
    def monthly_cents(self) -> int:
        return self.window_cents * HOURS_PER_MONTH // self.hours


@dataclass(frozen=True)
class Unfit:
    """An offered tier the peaks do not fit, and which limits they are over."""

    tier: Tier
    over: list[str]


@dataclass(frozen=True)
class Recommendation:
    cluster: Cluster
    verdict: Verdict
    headroom_percent: int
    complete_hours: int
    start: datetime | None = None
    end: datetime | None = None
    peaks: Peaks | None = None
    current: Option | None = None
    options: tuple[Option, ...] = ()
    unfit: tuple[Unfit, ...] = ()

    required_hours = MIN_COMPLETE_HOURS

    @property
    def hours(self) -> int:
        return (self.end - self.start) // HOUR if self.start and self.end else 0

    @property
    def cheapest(self) -> Option | None:
        return self.options[0] if self.options else None

    @property
    def monthly_saving_cents(self) -> int:
        """What the cheapest option saves a month against the current cost (0 when staying)."""
        if self.verdict != Verdict.SWITCH:
            return 0
        return self.current.monthly_cents - self.cheapest.monthly_cents


def recommendation_for(*, cluster: Cluster) -> Recommendation:
    """The recommendation for ``cluster`` (read in its organization's tenant scope)."""
    headroom = settings.SLUICE_RECOMMENDATION_HEADROOM_PERCENT
    start, end, complete = _window(cluster)
    if complete < MIN_COMPLETE_HOURS:
        return Recommendation(cluster, Verdict.NOT_ENOUGH_HISTORY, headroom, complete)
    ledger = UsageHour.objects.filter(cluster=cluster, hour__gte=start, hour__lt=end)
    rows = list(
        ledger.order_by("dimension", "hour").values_list(
            "cluster_id", "dimension", "hour", "quantity"
        )
    )
    peaks = _peaks(cluster, rows)
    prices = price_book()
    hours = (end - start) // HOUR
    # What it cost: its ledger as recorded, at its tier throughout the window.
    current = Option(
        cluster.tier,
        cluster.capacity_units,
        rate(rows, price_spans(prices, TierHistory.constant({cluster.pk: cluster.tier_id}))),
        hours,
    )
    usage = [row for row in rows if row[1] not in TIME_DIMENSIONS]
    lived = sorted({row[2] for row in rows})
    options, unfit = [], []
    for tier in Tier.objects.filter(offered=True):
        units, over = _fewest_units(tier, peaks, headroom)
        if units is None:
            unfit.append(Unfit(tier, over))
            continue
        synthetic = _with_time_hours(usage, cluster.pk, lived, units)
        spans = price_spans(prices, TierHistory.constant({cluster.pk: tier.pk}))
        options.append(Option(tier, units, rate(synthetic, spans), hours))
    # The cheapest first; at a tie the current tier, then the catalog's order.
    options.sort(key=lambda o: (o.window_cents, o.tier.pk != cluster.tier_id, o.tier.position))
    cheaper = bool(options) and options[0].monthly_cents < current.monthly_cents
    return Recommendation(
        cluster,
        Verdict.SWITCH if cheaper else Verdict.STAY,
        headroom,
        complete,
        start=start,
        end=end,
        peaks=peaks,
        current=current,
        options=tuple(options),
        unfit=tuple(unfit),
    )


def _window(cluster: Cluster) -> tuple[datetime | None, datetime | None, int]:
    """``[start, end)`` and its complete hours: up to the latest complete hour, at most
    ``WINDOW_HOURS``, from the first whole hour at the cluster's current size."""
    latest_size = cluster.size_history.order_by("-since", "-id").values_list("since", flat=True)
    since = latest_size.first() or cluster.created_at
    first_whole = _hour_of(since)
    if first_whole != since:
        first_whole += HOUR  # the hour of the change is a mix of two sizes
    by_hour = (
        UsageHour.objects.filter(cluster=cluster, hour__gte=first_whole)
        .values("hour")
        .annotate(incomplete=Count("pk", filter=Q(complete=False)))
        .filter(incomplete=0)
    )
    latest = by_hour.aggregate(latest=Max("hour"))["latest"]
    if latest is None:
        return None, None, 0
    end = latest + HOUR
    start = max(end - WINDOW_HOURS * HOUR, first_whole)
    return start, end, by_hour.filter(hour__gte=start, hour__lt=end).count()


def _peaks(cluster: Cluster, rows: Iterable[LedgerRow]) -> Peaks:
    busiest = dict.fromkeys(METERED_DIMENSIONS, 0)
    for _cluster, dimension, _hour, quantity in rows:
        busiest[dimension] = max(busiest[dimension], quantity)
    retention = live_topics(cluster=cluster).aggregate(longest=Max("retention_ms"))["longest"]
    return Peaks(
        ingress_bytes_per_hour=busiest[Dimension.INGRESS_BYTES],
        egress_bytes_per_hour=busiest[Dimension.EGRESS_BYTES],
        partitions=busiest[Dimension.PARTITION_HOURS],
        storage_bytes=busiest[Dimension.STORAGE_BYTE_HOURS],
        retention_ms=retention or 0,
    )


def _fewest_units(tier: Tier, peaks: Peaks, headroom: int) -> tuple[int | None, list[str]]:
    """The fewest capacity units at which ``peaks`` with ``headroom`` percent fit ``tier``
    (1 for tiers not sized in units), or None and the limits they are over at the most."""
    sizes = (
        range(tier.min_capacity_units, tier.max_capacity_units + 1)
        if tier.kind == Kind.DEDICATED
        else range(1, 2)
    )
    over: list[str] = []
    for units in sizes:
        over = _over_limits(tier, units, peaks, headroom)
        if not over:
            return units, []
    return None, over


def _over_limits(tier: Tier, units: int, peaks: Peaks, headroom: int) -> list[str]:
    """The limits of ``tier`` at ``units`` that a peak with headroom exceeds; integers only
    (a peak times (100 + headroom) against the limit times 100)."""
    limits = limits_of(tier, units)
    scaled = 100 + headroom
    checks = (
        (
            "ingress",
            peaks.ingress_bytes_per_hour,
            limits.ingress_bytes_per_second * SECONDS_PER_HOUR,
        ),
        ("egress", peaks.egress_bytes_per_hour, limits.egress_bytes_per_second * SECONDS_PER_HOUR),
        ("partitions", peaks.partitions, limits.max_partitions),
        ("storage", peaks.storage_bytes, limits.max_storage_bytes),
    )
    over = [name for name, peak, limit in checks if peak * scaled > limit * 100]
    if peaks.retention_ms > tier.max_retention_hours * MS_PER_HOUR:
        over.append("retention")
    return over


def _with_time_hours(
    usage: list[LedgerRow], cluster: int, lived: list[datetime], units: int
) -> Iterator[LedgerRow]:
    """``usage`` and, for every hour the cluster lived, the time dimensions a cluster of
    ``units`` meters (those its tier does not price make no line)."""
    yield from usage
    for dimension, quantity in time_quantities(units).items():
        for hour in lived:
            yield (cluster, dimension, hour, quantity)


def _hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _mbps(bytes_per_hour: int) -> Decimal:
    """Bytes in an hour as MB/s (10^6 bytes), to the byte per second."""
    return (Decimal(bytes_per_hour) / SECONDS_PER_HOUR / 10**6).quantize(Decimal("0.000001"))
