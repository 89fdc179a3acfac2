"""Writes of the billing app: the usage ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from clusters.models import Cluster

from .models import UsageAdjustment, UsageHour

# A recomputed snapshot replaces what the row held, unless the hour is already invoiced (final:
# the difference becomes an adjustment) or the row was computed from later data than this
# snapshot (two runs that overlap cannot put an older view back).
_ON_CONFLICT = """
ON CONFLICT (cluster_id, dimension, hour) DO UPDATE SET
    quantity = excluded.quantity,
    complete = excluded.complete,
    computed_at = excluded.computed_at
WHERE billing_usagehour.final_at IS NULL
    AND billing_usagehour.computed_at <= excluded.computed_at
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
    """Write recomputed snapshots into the ledger; returns how many rows were written. Hours
    already invoiced are not changed: a difference becomes a UsageAdjustment, once.

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
    with transaction.atomic(), connection.cursor() as cursor:
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
            written = cursor.rowcount
        else:
            written = 0
            for start in range(0, len(snapshots), _VALUES_CHUNK):
                chunk = snapshots[start : start + _VALUES_CHUNK]
                params = []
                for s in chunk:
                    params += [owners[s.cluster_id], s.cluster_id, s.dimension, s.hour]
                    params += [s.quantity, s.complete, now]
                values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
                cursor.execute(_UPSERT_VALUES.format(values=values), params)
                written += cursor.rowcount
        _adjust_final_hours(snapshots)
    return written


def _adjust_final_hours(snapshots: list[HourSnapshot]) -> None:
    keys = {(s.cluster_id, s.dimension, s.hour): s for s in snapshots}
    final = UsageHour.unscoped_all_tenants.select_for_update().filter(
        cluster_id__in={s.cluster_id for s in snapshots},
        hour__in={s.hour for s in snapshots},
        final_at__isnull=False,
    )
    for row in final:
        snapshot = keys.get((row.cluster_id, row.dimension, row.hour))
        if snapshot is None:
            continue
        adjusted = (
            UsageAdjustment.unscoped_all_tenants.filter(
                cluster_id=row.cluster_id, dimension=row.dimension, hour=row.hour
            ).aggregate(total=Sum("quantity"))["total"]
            or 0
        )
        difference = snapshot.quantity - row.quantity - adjusted
        if difference:
            UsageAdjustment.unscoped_all_tenants.create(
                organization_id=row.organization_id,
                cluster_id=row.cluster_id,
                dimension=row.dimension,
                hour=row.hour,
                quantity=difference,
            )
