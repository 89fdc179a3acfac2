"""What an organization's clusters cost: per day (the costs API), and for the month so far
(the Billing tab, and the no-card allowance of the payment policy).

Nothing here prices anything: each period is rated by ``rating.rate`` over the ledger rows of
that period (``rating_inputs``), exactly as an invoice is, and the lines it returns are the
rows given here, with the cluster's id and name and the day's completeness added.

- **Per day**, a day's lines are floored to the micro-dollar on their own, so the days of a
  month may add up to slightly less than the month's invoice line of the same cluster,
  dimension and price: by less than one micro-dollar per line per day. The invoice, rated over
  the whole month, is the bill.
- **Month to date** rates the month's ledger so far as one period: its lines are the draft
  invoice's usage lines, to the cent.
- **Usage only**: an adjustment (usage of an invoiced hour found later) is billed on the next
  invoice and is not in these amounts.
- **complete**: metering has closed every hour of the period (the cluster's cell's watermark
  has passed its end) and every ledger hour in it is complete. **estimated**: some hour that
  metering has already closed is incomplete (samples were missing): the amount counts what
  was recorded, and may be less than what was used.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db.models import Min
from django.db.models.functions import TruncDate
from django.utils import timezone

from clusters.models import Cluster, Tier
from foundation.api.validation import EARLIEST_INSTANT, LATEST_INSTANT
from foundation.errors import InvalidInput
from tenants.models import Organization

from .invoices import month_period
from .models import MeteringCursor, UsageHour
from .rating import BEGINNING, HOUR, Line, price_spans, rate
from .rating_inputs import price_book, tier_history, usage_rows
from .selectors import UNITS

DAY = timedelta(days=1)
GRANULARITIES = ("day",)
# The longest range one request may ask for: a calendar month, however it is aligned.
MAX_DAYS = 31
EARLIEST_DAY = EARLIEST_INSTANT.date()
LATEST_DAY = LATEST_INSTANT.date()  # exclusive, like the API's instants
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", re.ASCII)


@dataclass(frozen=True)
class CostRow:
    """One cluster's cost of one dimension, at one price, in one period (a day, or the month
    so far): one line of ``rating.rate``."""

    start: datetime  # the period's first instant (UTC)
    cluster_public_id: str
    cluster_name: str
    tier: str  # the slug of the tier whose price this is
    dimension: str
    unit: str
    quantity: int
    unit_price_micros: int
    per_units: int
    amount_micros: int
    amount_cents: int  # half-even, as on an invoice line
    complete: bool
    estimated: bool

    @property
    def day(self) -> date:
        return self.start.date()


@dataclass(frozen=True)
class ClusterCost:
    """One cluster's month so far: its lines, added up."""

    cluster_public_id: str
    cluster_name: str
    rows: list[CostRow] = field(default_factory=list)

    @property
    def amount_cents(self) -> int:
        return sum(row.amount_cents for row in self.rows)

    @property
    def estimated(self) -> bool:
        return any(row.estimated for row in self.rows)

    def cents_by_dimension(self) -> dict[str, int]:
        cents: dict[str, int] = {}
        for row in self.rows:
            cents[row.dimension] = cents.get(row.dimension, 0) + row.amount_cents
        return cents

    def estimated_dimensions(self) -> set[str]:
        return {row.dimension for row in self.rows if row.estimated}


# The range ---------------------------------------------------------------------------------


def iso_date(text, *, field: str) -> date:
    """A calendar date written YYYY-MM-DD in ASCII digits, from 1970-01-01 to 9998-12-31."""
    match = _ISO_DATE.fullmatch(text) if isinstance(text, str) else None
    try:
        value = date(int(match[1]), int(match[2]), int(match[3])) if match else None
    except ValueError:  # 2026-02-30
        value = None
    if value is None:
        raise InvalidInput("Not a date: YYYY-MM-DD, e.g. 2026-11-01", field=field)
    if not EARLIEST_DAY <= value < LATEST_DAY:
        raise InvalidInput(f"Out of range: from {EARLIEST_DAY} to before {LATEST_DAY}", field=field)
    return value


def cost_range(
    *, start: date | None = None, end: date | None = None, today: date | None = None
) -> tuple[date, date]:
    """``[start, end)`` in whole UTC days; raises ``InvalidInput`` naming the field.

    ``end`` (exclusive) defaults to tomorrow, so that today is in; ``start`` to the first day
    of the month of the range's last day: by default, the current month to date."""
    today = today or timezone.now().astimezone(UTC).date()
    if end is None:
        end = min(today + DAY, LATEST_DAY)
    if start is None:
        start = (end - DAY).replace(day=1) if end > EARLIEST_DAY else EARLIEST_DAY
    if end <= start:
        raise InvalidInput("end must be after start (end is exclusive)", field="end")
    if (end - start).days > MAX_DAYS:
        raise InvalidInput(
            f"At most {MAX_DAYS} days in one request; this asks for {(end - start).days}. "
            "Shorten the range",
            field="end",
        )
    return start, end


# Costs --------------------------------------------------------------------------------------


def daily_costs(
    *,
    organization: Organization,
    start: date,
    end: date,
    cluster: str | None = None,
) -> list[CostRow]:
    """Each day's cost of ``[start, end)``, per cluster (or of the cluster whose public id is
    ``cluster`` only, deleted or not), dimension and price: the days in order, rows with nothing
    in the ledger left out. An id that is not one of the organization's clusters is
    ``InvalidInput``."""
    cluster_pk = None
    if cluster is not None:
        cluster_pk = (
            Cluster.objects.filter(organization=organization, public_id=cluster)
            .values_list("pk", flat=True)
            .first()
        )
        if cluster_pk is None:
            raise InvalidInput(f"No cluster {cluster!r} in this organization", field="cluster")
    days = [start + DAY * n for n in range((end - start).days)]
    periods = [(_midnight(day), _midnight(day + DAY)) for day in days]
    return _cost_rows(organization, periods, cluster_pk=cluster_pk)


def month_to_date(*, organization: Organization, now: datetime | None = None) -> list[ClusterCost]:
    """The current calendar month (UTC) so far, per cluster, in the order of the clusters'
    creation; clusters with nothing in the ledger left out."""
    rows = _cost_rows(organization, [_month_of(now or timezone.now())])
    by_cluster: dict[str, ClusterCost] = {}
    for row in rows:
        cost = by_cluster.get(row.cluster_public_id)
        if cost is None:
            cost = by_cluster[row.cluster_public_id] = ClusterCost(
                row.cluster_public_id, row.cluster_name
            )
        cost.rows.append(row)
    return list(by_cluster.values())


def cluster_month_to_date(*, cluster: Cluster, now: datetime | None = None) -> ClusterCost:
    """One cluster's month so far, rated with its organization's month as the draft invoice
    is (its lines are the draft's lines of this cluster); no rows if nothing is in the ledger."""
    rows = _cost_rows(cluster.organization, [_month_of(now)], cluster_pk=cluster.pk)
    return ClusterCost(cluster.public_id, cluster.name, rows)


def month_to_date_micros(*, organization: Organization, now: datetime | None = None) -> int:
    """What the current month's usage costs so far, in micro-dollars (the draft's lines)."""
    return sum(line.micros for _start, _end, line in _lines(organization, [_month_of(now)]))


def _month_of(now: datetime | None) -> tuple[datetime, datetime]:
    now = (now or timezone.now()).astimezone(UTC)
    return month_period(now.year, now.month)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _lines(
    organization: Organization,
    periods: Iterable[tuple[datetime, datetime]],
    cluster_pk: int | None = None,
) -> Iterator[tuple[datetime, datetime, Line]]:
    """The usage lines of each period, rated on their own: the one rating function, over
    the ledger rows of the period."""
    span_of = price_spans(price_book(), tier_history(organization=organization))
    for start, end in periods:
        rows = usage_rows(organization=organization, start=start, end=end)
        if cluster_pk is not None:
            rows = (row for row in rows if row[0] == cluster_pk)
        for line in rate(rows, span_of):
            yield start, end, line


def _cost_rows(
    organization: Organization,
    periods: list[tuple[datetime, datetime]],
    cluster_pk: int | None = None,
) -> list[CostRow]:
    lines = list(_lines(organization, periods, cluster_pk))
    if not lines:
        return []
    clusters = {
        pk: (public_id, name, cell)
        for pk, public_id, name, cell in Cluster.objects.filter(
            organization=organization, pk__in={line.cluster for _s, _e, line in lines}
        ).values_list("pk", "public_id", "name", "cell_id")
    }
    watermarks = dict(
        MeteringCursor.objects.filter(
            cell_id__in={cell for _p, _n, cell in clusters.values()}
        ).values_list("cell_id", "watermark")
    )
    tiers = dict(Tier.objects.values_list("pk", "slug"))
    incomplete = _incomplete_days(organization, periods[0][0], periods[-1][1])
    rows = []
    for start, end, line in lines:
        public_id, name, cell = clusters[line.cluster]
        watermark = watermarks.get(cell, BEGINNING)
        gaps = [
            first
            for day, first in incomplete.get((line.cluster, line.dimension), ())
            if start <= day < end
        ]
        rows.append(
            CostRow(
                start=start,
                cluster_public_id=public_id,
                cluster_name=name,
                tier=tiers[line.price.tier],
                dimension=line.dimension,
                unit=UNITS[line.dimension],
                quantity=line.quantity,
                unit_price_micros=line.price.micros,
                per_units=line.price.per_units,
                amount_micros=line.micros,
                amount_cents=line.cents,
                complete=not gaps and end <= watermark,
                estimated=any(first + HOUR <= watermark for first in gaps),
            )
        )
    return rows


def _incomplete_days(
    organization: Organization, start: datetime, end: datetime
) -> dict[tuple[int, str], list[tuple[datetime, datetime]]]:
    """Per (cluster, dimension), each UTC day of ``[start, end)`` holding an incomplete ledger
    hour: the day's first instant and its first incomplete hour."""
    found = (
        UsageHour.objects.filter(
            organization=organization, hour__gte=start, hour__lt=end, complete=False
        )
        .annotate(day=TruncDate("hour", tzinfo=UTC))
        .order_by()
        .values_list("cluster_id", "dimension", "day")
        .annotate(first=Min("hour"))
    )
    days: dict[tuple[int, str], list[tuple[datetime, datetime]]] = {}
    for cluster, dimension, day, first in found:
        days.setdefault((cluster, dimension), []).append((_midnight(day), first))
    return days
