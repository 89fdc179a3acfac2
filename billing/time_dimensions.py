"""The time dimensions: cluster-hours and capacity-unit-hours, from Sluice's own record of
cluster sizes (clusters.ClusterSize), not from Prometheus, so every cell has them.

Which of them a cluster meters is said by its tier's prices, not by its kind: a tier priced by
cluster-hours (Standard) meters cluster-hours, one priced by capacity-unit-hours (Dedicated)
meters those, one priced by neither (Serverless) meters no time. Kind cannot say it: Serverless
and Standard are both logical clusters on a cell's shared Kafka, and only the Standard price
has an hourly floor. A tier is priced by a dimension from its first price version's effective
date on, and price versions are added, never edited, so recomputing an hour meters it again
the same way.

An hour counts every size in force at any moment of it while the cluster lived, each tier in
force billing its own dimension: cluster-hours 1, capacity-unit-hours the most units in force.
A resize inside an hour counts the larger size for the hour; a change from Standard to
Dedicated inside an hour counts the hour's cluster-hour and the Dedicated units.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from django.db.models import Min, QuerySet

from clusters.models import TIME_DIMENSIONS, Cluster, ClusterSize, Dimension, TierPrice

from .attribution import MeteredCluster
from .deltas import HOUR, Window


@dataclass(frozen=True)
class Size:
    since: float  # epoch seconds
    tier_id: int
    capacity_units: int


def sizes_of(
    clusters: Sequence[MeteredCluster], end: datetime, history: QuerySet[ClusterSize]
) -> dict[int, list[Size]]:
    """Each cluster's sizes that began before ``end``, in order, read from ``history`` (the
    caller's manager: scoped to a tenant, or not). A cluster with none (made before the record
    was kept and not backfilled) has its current size since its creation."""
    pks = [cluster.pk for cluster in clusters]
    sizes: dict[int, list[Size]] = defaultdict(list)
    rows = (
        history.filter(cluster_id__in=pks, since__lt=end)
        .order_by("cluster_id", "since", "id")
        .values_list("cluster_id", "since", "tier_id", "capacity_units")
    )
    for pk, since, tier_id, units in rows:
        sizes[pk].append(Size(since.timestamp(), tier_id, units))
    missing = [pk for pk in pks if pk not in sizes]
    if missing:
        current = Cluster.unscoped_all_tenants.filter(pk__in=missing).values_list(
            "pk", "created_at", "tier_id", "capacity_units"
        )
        for pk, created_at, tier_id, units in current:
            sizes[pk].append(Size(created_at.timestamp(), tier_id, units))
    return sizes


def priced_from() -> dict[tuple[int, str], float]:
    """(tier, time dimension) -> when the tier's first price for it took effect."""
    rows = (
        TierPrice.objects.filter(dimension__in=TIME_DIMENSIONS)
        .values("tier_id", "dimension")
        .annotate(first=Min("effective_from"))
    )
    return {(row["tier_id"], row["dimension"]): row["first"].timestamp() for row in rows}


def in_force(sizes: list[Size], hour: int) -> list[Size]:
    """The sizes in force at some moment of the hour: each from its ``since`` until the next
    one's (the first from the cluster's creation, which the caller checks)."""
    ends = [following.since for _, following in pairwise(sizes)] + [math.inf]
    return [
        size
        for index, (size, until) in enumerate(zip(sizes, ends, strict=True))
        if (index == 0 or size.since < hour + HOUR) and until > hour
    ]


def time_hours(
    clusters: Sequence[MeteredCluster],
    window: Window,
    *,
    history: QuerySet[ClusterSize] | None = None,
) -> dict[tuple[int, str, int], int]:
    """Cluster-hours and capacity-unit-hours per (cluster pk, dimension, hour) for the hours of
    the window each cluster lived; absent where its tier is priced by neither."""
    if history is None:
        history = ClusterSize.unscoped_all_tenants.all()
    sizes = sizes_of(clusters, window.datetimes[1], history)
    priced = priced_from()
    totals: dict[tuple[int, str, int], int] = {}
    for cluster in clusters:
        changes = sizes.get(cluster.pk)
        if not changes:
            continue
        for hour in _lived_hours(cluster, window):
            for size in in_force(changes, hour):
                for dimension in TIME_DIMENSIONS:
                    since = priced.get((size.tier_id, dimension))
                    if since is None or since >= hour + HOUR:
                        continue
                    quantity = (
                        size.capacity_units if dimension == Dimension.CAPACITY_UNIT_HOURS else 1
                    )
                    key = (cluster.pk, dimension, hour)
                    totals[key] = max(totals.get(key, 0), quantity)
    return totals


def _lived_hours(cluster: MeteredCluster, window: Window) -> range:
    """The hours of the window the cluster lived at some moment of."""
    hours = window.hours
    first = max(hours.start, int(cluster.created_at // HOUR) * HOUR)
    stop = hours.stop
    if cluster.deleted_at is not None:
        stop = min(stop, math.ceil(cluster.deleted_at / HOUR) * HOUR)
    return range(first, stop, HOUR)
