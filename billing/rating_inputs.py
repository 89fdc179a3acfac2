"""What rating reads from the database: the price book, each cluster's tier over time, and an
organization's ledger rows of a period, streamed.

The rows come as ``(cluster id, dimension, hour, quantity)`` tuples in server-side chunks,
ordered by cluster, dimension and hour (the columns of the ledger's unique index), and are
never all in memory: ``rating.rate`` folds them into one running total per line as they arrive.
Read with the organization in tenant scope. Quantities leave the database as they are;
every multiplication happens in ``rating``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from clusters.models import Cluster, TierPrice
from tenants.models import Organization

from .models import UsageAdjustment, UsageHour
from .rating import LedgerRow, PriceBook, PriceVersion, TierHistory

ROW_FIELDS = ("cluster_id", "dimension", "hour", "quantity")
CHUNK_SIZE = 10_000


def price_book() -> PriceBook:
    """Every version of every tier's prices."""
    fields = ("tier_id", "dimension", "micros", "per_units", "effective_from")
    return PriceBook(
        PriceVersion(*values) for values in TierPrice.objects.values_list(*fields).iterator()
    )


def tier_history(*, organization: Organization) -> TierHistory:
    """The tier of each of the organization's clusters, deleted ones included.

    Each cluster's current tier, for all of its life: the record of a cluster's size over time
    takes its place as the source of tier changes.
    """
    clusters = Cluster.objects.filter(organization=organization).values_list("pk", "tier_id")
    return TierHistory.constant(dict(clusters))


def usage_rows(
    *, organization: Organization, start: datetime, end: datetime, chunk_size: int = CHUNK_SIZE
) -> Iterator[LedgerRow]:
    """The organization's ledger hours in ``[start, end)``."""
    return (
        UsageHour.objects.filter(organization=organization, hour__gte=start, hour__lt=end)
        .order_by("cluster_id", "dimension", "hour")
        .values_list(*ROW_FIELDS)
        .iterator(chunk_size=chunk_size)
    )


def adjustment_rows(
    *,
    organization: Organization,
    created_from: datetime,
    created_until: datetime,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[LedgerRow]:
    """The organization's adjustments made in ``[created_from, created_until)``, each at the
    hour it corrects (and so rated at that hour's price), whatever the invoice they go on."""
    return (
        UsageAdjustment.objects.filter(
            organization=organization,
            created_at__gte=created_from,
            created_at__lt=created_until,
        )
        .order_by("cluster_id", "dimension", "hour")
        .values_list(*ROW_FIELDS)
        .iterator(chunk_size=chunk_size)
    )
