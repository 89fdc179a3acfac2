"""Writes of the billing app: the usage ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from clusters.models import Cluster

from .models import UsageAdjustment, UsageHour

# One statement for a batch of hours, on PostgreSQL and SQLite alike: a recomputed snapshot
# replaces what the row held, unless the hour is already invoiced (final: the difference becomes
# an adjustment) or the row was computed from later data than this snapshot (two runs that
# overlap cannot put an older view back).
_UPSERT = """
INSERT INTO billing_usagehour
    (organization_id, cluster_id, dimension, hour, quantity, complete, computed_at)
VALUES {values}
ON CONFLICT (cluster_id, dimension, hour) DO UPDATE SET
    quantity = excluded.quantity,
    complete = excluded.complete,
    computed_at = excluded.computed_at
WHERE billing_usagehour.final_at IS NULL
    AND billing_usagehour.computed_at <= excluded.computed_at
"""


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
    with transaction.atomic():
        values, params = [], []
        for s in snapshots:
            values.append("(%s, %s, %s, %s, %s, %s, %s)")
            params += [owners[s.cluster_id], s.cluster_id, s.dimension, s.hour]
            params += [s.quantity, s.complete, now]
        with connection.cursor() as cursor:
            cursor.execute(_UPSERT.format(values=", ".join(values)), params)
            written = cursor.rowcount
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
