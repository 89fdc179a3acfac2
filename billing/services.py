"""Writes of the billing app: the usage ledger.

An hour of a month its organization has closed (``ClosedMonth``) is final: a snapshot of it
never changes the row, and what it differs by (from the row, and the adjustments already made)
becomes a ``UsageAdjustment``, billed on the next invoice. On PostgreSQL, a write holds its
organizations' rows in share mode while it reads which months are closed and writes, and the
month close holds them exclusively while it closes: a write is entirely before a close, or
entirely after it (as an adjustment), never half of each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from clusters.models import Cluster

from .models import ClosedMonth, UsageAdjustment, UsageHour

# A recomputed snapshot replaces what the row held, unless the row was computed from later data
# than this snapshot (two runs that overlap cannot put an older view back). Hours of closed
# months never get here.
_ON_CONFLICT = """
ON CONFLICT (cluster_id, dimension, hour) DO UPDATE SET
    quantity = excluded.quantity,
    complete = excluded.complete,
    computed_at = excluded.computed_at
WHERE billing_usagehour.computed_at <= excluded.computed_at
"""
_COLUMNS = "(organization_id, cluster_id, dimension, hour, quantity, complete, computed_at)"
# PostgreSQL: the whole batch as seven arrays, one statement whatever its size (a VALUES list
# costs a parameter per field: 168,000 of them for a cell's six hours, bound one by one).
_UPSERT_ARRAYS = f"""
INSERT INTO billing_usagehour {_COLUMNS}
SELECT organization_id, cluster_id, dimension, hour, quantity, complete, %s
FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::timestamptz[], %s::bigint[],
            %s::boolean[]) AS batch(organization_id, cluster_id, dimension, hour, quantity,
                                    complete)
{_ON_CONFLICT}"""  # noqa: S608 - built from constants; values are parameters
# SQLite (make run): a VALUES list, in chunks under its limit on parameters.
_UPSERT_VALUES = f"INSERT INTO billing_usagehour {_COLUMNS} VALUES {{values}} {_ON_CONFLICT}"  # noqa: S608
_VALUES_CHUNK = 1000


@dataclass(frozen=True)
class HourSnapshot:
    cluster_id: int
    dimension: str
    hour: datetime  # the hour's start, UTC
    quantity: int
    complete: bool


def record_hours(snapshots: list[HourSnapshot], *, now: datetime | None = None) -> int:
    """Write recomputed snapshots into the ledger; returns how many rows were written. Hours of
    closed months are not changed: a difference becomes a UsageAdjustment, once.

    ``now`` is when the data the snapshots were computed from ends (``computed_at``): a row
    computed from later data is left as it is."""
    now = now or timezone.now()
    if not snapshots:
        return 0
    for snapshot in snapshots:
        if snapshot.quantity < 0:
            raise ValueError(f"negative usage is never recorded: {snapshot}")
        if snapshot.hour.minute or snapshot.hour.second or snapshot.hour.microsecond:
            raise ValueError(f"not the start of an hour: {snapshot.hour}")
    # The organization is the cluster's: read, never taken from the caller.
    owners = dict(
        Cluster.unscoped_all_tenants.filter(pk__in={s.cluster_id for s in snapshots}).values_list(
            "pk", "organization_id"
        )
    )
    with transaction.atomic():
        hold_organizations(set(owners.values()))
        closed = closed_months(
            {(owners[s.cluster_id], month_start(s.hour)) for s in snapshots}, lock=False
        )
        final, current = [], []
        for s in snapshots:
            month = (owners[s.cluster_id], month_start(s.hour))
            (final if month in closed else current).append(s)
        written = _upsert(current, owners, now)
        if final:
            _adjust_final_hours(final, owners)
    return written


def month_start(hour: datetime) -> datetime:
    return hour.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def hold_organizations(organization_ids: set[int]) -> None:
    """Hold the organizations' rows in share mode until the transaction ends (PostgreSQL): a
    month close, which holds them exclusively, waits for this write, or this write for it.
    SQLite runs one writing transaction at a time anyway."""
    if connection.vendor != "postgresql" or not organization_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM tenants_organization WHERE id = ANY(%s) ORDER BY id FOR SHARE",
            [sorted(organization_ids)],
        )


def closed_months(months: set[tuple[int, datetime]], *, lock: bool) -> set[tuple[int, datetime]]:
    """Which of the (organization id, month start) pairs are closed; ``lock`` holds their rows
    (one writer of adjustments per closed month at a time)."""
    if not months:
        return set()
    rows = ClosedMonth.unscoped_all_tenants.filter(
        organization_id__in={organization for organization, _ in months},
        period_start__in={start for _, start in months},
    ).order_by("pk")
    if lock:
        rows = rows.select_for_update()
    return set(rows.values_list("organization_id", "period_start")) & months


def _upsert(snapshots: list[HourSnapshot], owners: dict[int, int], now: datetime) -> int:
    if not snapshots:
        return 0
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                _UPSERT_ARRAYS,
                [
                    now,
                    [owners[s.cluster_id] for s in snapshots],
                    [s.cluster_id for s in snapshots],
                    [s.dimension for s in snapshots],
                    [s.hour for s in snapshots],
                    [s.quantity for s in snapshots],
                    [s.complete for s in snapshots],
                ],
            )
            return cursor.rowcount
        written = 0
        for start in range(0, len(snapshots), _VALUES_CHUNK):
            chunk = snapshots[start : start + _VALUES_CHUNK]
            params = []
            for s in chunk:
                # As Django stores a datetime (naive UTC text), or its own lookups miss the row.
                hour = connection.ops.adapt_datetimefield_value(s.hour)
                params += [owners[s.cluster_id], s.cluster_id, s.dimension, hour]
                params += [s.quantity, s.complete, connection.ops.adapt_datetimefield_value(now)]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
            cursor.execute(_UPSERT_VALUES.format(values=values), params)
            written += cursor.rowcount
        return written


def _adjust_final_hours(snapshots: list[HourSnapshot], owners: dict[int, int]) -> None:
    """What each final hour's snapshot differs by, from its row (none: 0) and the adjustments
    made so far, becomes one more adjustment."""
    closed_months({(owners[s.cluster_id], month_start(s.hour)) for s in snapshots}, lock=True)
    clusters, hours = {s.cluster_id for s in snapshots}, {s.hour for s in snapshots}
    recorded = {
        (cluster, dimension, hour): quantity
        for cluster, dimension, hour, quantity in UsageHour.unscoped_all_tenants.filter(
            cluster_id__in=clusters, hour__in=hours
        ).values_list("cluster_id", "dimension", "hour", "quantity")
    }
    adjusted = {
        (row["cluster_id"], row["dimension"], row["hour"]): row["total"]
        for row in UsageAdjustment.unscoped_all_tenants.filter(
            cluster_id__in=clusters, hour__in=hours
        )
        .values("cluster_id", "dimension", "hour")
        .annotate(total=Sum("quantity"))
    }
    adjustments = []
    for s in snapshots:
        key = (s.cluster_id, s.dimension, s.hour)
        difference = s.quantity - recorded.get(key, 0) - adjusted.get(key, 0)
        if difference:
            adjustments.append(
                UsageAdjustment(
                    organization_id=owners[s.cluster_id],
                    cluster_id=s.cluster_id,
                    dimension=s.dimension,
                    hour=s.hour,
                    quantity=difference,
                )
            )
    UsageAdjustment.unscoped_all_tenants.bulk_create(adjustments)
