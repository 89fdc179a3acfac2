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

from clusters.models import ClusterSize, TierPrice
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
    """The tiers of each of the organization's clusters over time, deleted clusters included,
    from the record of their sizes (a resize that keeps the tier is no change of tier)."""
    changes: dict[int, list[tuple[datetime, int]]] = {}
    rows = (
        ClusterSize.objects.filter(organization=organization)
        .order_by("cluster_id", "since", "pk")
        .values_list("cluster_id", "since", "tier_id")
    )
    for cluster, since, tier in rows.iterator(chunk_size=CHUNK_SIZE):
        found = changes.setdefault(cluster, [])
        if not found or found[-1][1] != tier:
            found.append((since, tier))
    return TierHistory(changes)


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
