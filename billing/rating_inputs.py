"""What rating reads from the database: the price book, each cluster's tier over time, and an
organization's ledger rows of a period, streamed.

The rows come as ``(cluster id, dimension, hour, quantity)`` tuples in server-side chunks,
ordered by cluster, dimension and hour (the columns of the ledger's unique index), and are
never all in memory: ``rating.rate`` folds them into one running total per line as they arrive.
Read with the organization in tenant scope. Quantities leave the database as they are;
every multiplication happens in ``rating``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    Func,
    IntegerField,
    Max,
    Min,
    Q,
    Sum,
    Value,
    When,
)

from clusters.models import ClusterSize, TierPrice
from tenants.models import Organization

from .models import UsageAdjustment, UsageHour
from .rating import LedgerRow, PriceBook, PriceVersion, TierHistory

ROW_FIELDS = ("cluster_id", "dimension", "hour", "quantity")
CHUNK_SIZE = 10_000


class EpochHour(Func):
    """A ledger hour as the number of whole hours since 1970 (an integer leaves the database
    several times faster than a timestamp is parsed; the summed reads return two per row)."""

    output_field = BigIntegerField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(
            compiler,
            connection,
            template="(EXTRACT(EPOCH FROM %(expressions)s)::bigint / 3600)",
            **extra,
        )

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(
            compiler,
            connection,
            template="(CAST(strftime('%%%%s', %(expressions)s) AS integer) / 3600)",
            **extra,
        )


@lru_cache(maxsize=4096)
def _hour_at(epoch_hour: int) -> datetime:
    return datetime.fromtimestamp(epoch_hour * 3600, UTC)


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
    billed_period_start: datetime | None,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[LedgerRow]:
    """The organization's adjustments billed on the invoice of the month starting at
    ``billed_period_start`` (``None``: those no closed invoice carries yet), each at the hour it
    corrects, and so rated at that hour's price, whatever the invoice they go on."""
    return (
        UsageAdjustment.objects.filter(
            organization=organization, billed_period_start=billed_period_start
        )
        .order_by("cluster_id", "dimension", "hour")
        .values_list(*ROW_FIELDS)
        .iterator(chunk_size=chunk_size)
    )


@dataclass
class SummedUsage:
    """An organization's usage of a period as rating reads it at a month close: ``rows`` in
    the ledger's order, and the (cluster, dimension, hour) of each stretch that holds an
    incomplete hour (``incomplete``: the hour is that stretch's first)."""

    rows: list[LedgerRow] = field(default_factory=list)
    incomplete: list[tuple[int, str, datetime]] = field(default_factory=list)


def tier_histories(*, organization_ids: Collection[int]) -> dict[int, TierHistory]:
    """``tier_history`` of several organizations, in one query."""
    changes: dict[int, dict[int, list[tuple[datetime, int]]]] = {pk: {} for pk in organization_ids}
    rows = (
        ClusterSize.unscoped_all_tenants.filter(organization_id__in=organization_ids)
        .order_by("organization_id", "cluster_id", "since", "pk")
        .values_list("organization_id", "cluster_id", "since", "tier_id")
    )
    for organization, cluster, since, tier in rows.iterator(chunk_size=CHUNK_SIZE):
        found = changes[organization].setdefault(cluster, [])
        if not found or found[-1][1] != tier:
            found.append((since, tier))
    return {pk: TierHistory(found) for pk, found in changes.items()}


def usage_summed(
    *,
    organization_ids: Collection[int],
    start: datetime,
    end: datetime,
    boundaries: Iterable[datetime],
    hourly_clusters: Collection[int],
) -> dict[int, SummedUsage]:
    """The ledger hours in ``[start, end)`` of each organization, summed by the database into
    one stretch per cluster, dimension and interval between ``boundaries`` (the instants a price
    changes): within a stretch the price is the same every hour, so rating the sum at the
    stretch's first hour is rating every hour. A stretch comes as two rows, its sum at its first
    hour and 0 at its last (so a line knows its segment). Clusters whose tier changed inside
    the period (``hourly_clusters``) are read hour by hour instead: their price may change at
    any hour. Only additions happen in SQL (PostgreSQL sums bigints as numeric: no overflow);
    every multiplication is rating's. One query for all the organizations (and one more for
    the hourly clusters), read in chunks."""
    edges = sorted({b for b in boundaries if start < b < end})
    stretch = (
        Case(
            *(When(hour__lt=edge, then=Value(index)) for index, edge in enumerate(edges)),
            default=Value(len(edges)),
            output_field=IntegerField(),
        )
        if edges
        else Value(0, output_field=IntegerField())
    )
    period = UsageHour.unscoped_all_tenants.filter(
        organization_id__in=organization_ids, hour__gte=start, hour__lt=end
    )
    summed = (
        period.exclude(cluster_id__in=hourly_clusters)
        .annotate(stretch=stretch)
        .values("organization_id", "cluster_id", "dimension", "stretch")
        .annotate(
            total=Sum("quantity"),
            first=EpochHour(Min("hour")),
            last=EpochHour(Max("hour")),
            incomplete=Count("pk", filter=Q(complete=False)),
        )
        .order_by("organization_id", "cluster_id", "dimension", "stretch")
        .values_list(
            "organization_id", "cluster_id", "dimension", "first", "last", "total", "incomplete"
        )
    )
    usage = {pk: SummedUsage() for pk in organization_ids}
    for organization, cluster, dimension, first, last, total, missing in summed.iterator(
        chunk_size=CHUNK_SIZE
    ):
        found = usage[organization]
        first_hour = _hour_at(first)
        found.rows.append((cluster, dimension, first_hour, int(total)))
        if last != first:
            found.rows.append((cluster, dimension, _hour_at(last), 0))
        if missing:
            found.incomplete.append((cluster, dimension, first_hour))
    if hourly_clusters:
        hourly = period.filter(cluster_id__in=hourly_clusters).order_by(
            "organization_id", "cluster_id", "dimension", "hour"
        )
        fields = ("organization_id", *ROW_FIELDS, "complete")
        for organization, cluster, dimension, hour, quantity, complete in hourly.values_list(
            *fields
        ).iterator(chunk_size=CHUNK_SIZE):
            usage[organization].rows.append((cluster, dimension, hour, quantity))
            if not complete:
                usage[organization].incomplete.append((cluster, dimension, hour))
    return usage
