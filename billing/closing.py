"""The month close: an organization's calendar month (UTC) becomes a final invoice, once.

When: after every cell's metering watermark has passed the month's end plus
``SLUICE_BILLING_CLOSE_GRACE_SECONDS`` (late samples are no longer awaited). An organization
whose month still holds incomplete hours (a Prometheus gap) waits up to
``SLUICE_BILLING_INCOMPLETE_GRACE_SECONDS`` after the month's end for them to be filled; after
that it closes with what is known, its lines holding an incomplete hour are marked estimated,
and the operators get an alert. Whatever metering learns later about a final hour becomes an
adjustment on the next invoice.

What, in one transaction per batch of organizations (``SLUICE_BILLING_CLOSE_BATCH``), holding
their rows locked (metering's writes to them wait; a second close waits, then finds the months
closed and does nothing), for each organization:

1. the month is marked closed (``ClosedMonth``): from then on every hour of it is final, and
   whatever metering learns about one becomes an adjustment instead;
2. the adjustments no closed invoice carries yet are claimed for this month's invoice;
3. the month is rated (``billing.rating.rate``, the one rating function) from the ledger as
   PostgreSQL sums it (one query for the whole batch) and recorded as the ``open`` invoice
   (``billing.invoices.invoice_record``), replacing the month-to-date draft;
4. its push to Stripe is queued in the outbox (``billing.outbox.outbox_add``), and its usage
   export, when exports are configured (``billing.exports.export_after_close``).

An organization that fails (a cluster with no tier on record, say) is rolled back alone (a
savepoint), alerted, and tried again by the next run.

The month-to-date draft is the same rating over the provisional ledger, recomputed by beat
(``refresh_draft``). ``month_rated`` is also what replays a closed month from the ledger: the
hours are final and the adjustments carry the month they were billed on, so it gives the same
lines to the micro-dollar.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from clusters.models import Cell, Cluster
from foundation.errors import Conflict
from tenants.audit import Actor, audit_record
from tenants.models import Organization
from tenants.scoping import tenant_scope

from .accounts import billed_to_snapshot, billing_account_of
from .alerts import alert_raise
from .exports import export_after_close
from .invoices import LineRecord, invoice_record, month_period
from .models import (
    AlertKind,
    ClosedMonth,
    Invoice,
    InvoiceState,
    MeteringCursor,
    UsageAdjustment,
)
from .outbox import outbox_add
from .rating import HOUR, Line, price_spans, rate
from .rating_inputs import adjustment_rows, price_book, tier_histories, usage_summed
from .services import month_start

CLOSER = Actor(system="month-close")
Gap = tuple[int, str, datetime]  # (cluster, dimension, hour) of an incomplete hour
_NAMED = ("pk", "public_id", "name")


class Outcome(enum.StrEnum):
    CLOSED = "closed"
    ESTIMATED = "closed-estimated"
    WAITING = "waiting-for-incomplete-hours"
    NOTHING = "nothing-to-bill"
    ALREADY = "already-closed"
    FAILED = "failed"


CLOSED_OUTCOMES = frozenset({Outcome.CLOSED, Outcome.ESTIMATED})


def previous_month_start(moment: datetime) -> datetime:
    return month_start(month_start(moment) - timedelta(days=1))


def period_of(start: datetime) -> tuple[datetime, datetime]:
    return month_period(start.year, start.month)


# Rating a month ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RatedMonth:
    lines: list[LineRecord]

    @property
    def estimated(self) -> bool:
        return any(line.estimated for line in self.lines)


def month_rated(
    *,
    organization: Organization,
    period_start: datetime,
    adjustments_billed_on: datetime | None = None,
    unbilled_adjustments: bool = False,
) -> RatedMonth:
    """The lines of the organization's month: its ledger hours, and the adjustments billed on
    the month starting at ``adjustments_billed_on``, or (``unbilled_adjustments``, for a
    preview) those no closed invoice carries yet."""
    return _MonthReader(period_start, [organization.pk]).rated(
        organization,
        adjustments_billed_on=adjustments_billed_on,
        unbilled_adjustments=unbilled_adjustments,
    )


class _MonthReader:
    """A month of several organizations' ledger, read in one go, rated one at a time."""

    def __init__(self, period_start: datetime, organization_ids: list[int]) -> None:
        self.start, self.end = period_of(period_start)
        self.prices = price_book()
        self.tiers = tier_histories(organization_ids=organization_ids)
        hourly = set().union(
            *(t.changed_between(self.start, self.end) for t in self.tiers.values())
        )
        self.usage = usage_summed(
            organization_ids=organization_ids,
            start=self.start,
            end=self.end,
            boundaries=self.prices.changes_between(self.start, self.end),
            hourly_clusters=hourly,
        )

    def incomplete(self, organization_id: int) -> bool:
        return bool(self.usage[organization_id].incomplete)

    def rated(
        self,
        organization: Organization,
        *,
        adjustments_billed_on: datetime | None = None,
        unbilled_adjustments: bool = False,
    ) -> RatedMonth:
        usage = self.usage[organization.pk]
        adjustments = (
            adjustment_rows(organization=organization, billed_period_start=adjustments_billed_on)
            if adjustments_billed_on is not None or unbilled_adjustments
            else ()
        )
        tiers = self.tiers[organization.pk]
        lines = rate(usage.rows, price_spans(self.prices, tiers), adjustments)
        return RatedMonth(_records(lines, usage.incomplete))


def _records(lines: list[Line], incomplete: Iterable[Gap]) -> list[LineRecord]:
    clusters = Cluster.unscoped_all_tenants.filter(pk__in={line.cluster for line in lines})
    names = {pk: (public_id, name) for pk, public_id, name in clusters.values_list(*_NAMED)}
    gaps: dict[tuple[int, str], list[datetime]] = {}
    for cluster, dimension, hour in incomplete:
        gaps.setdefault((cluster, dimension), []).append(hour)
    records = []
    for line in lines:
        public_id, name = names[line.cluster]
        estimated = line.kind == "usage" and any(
            line.first_hour <= hour <= line.last_hour
            for hour in gaps.get((line.cluster, line.dimension), ())
        )
        records.append(
            LineRecord(
                cluster_public_id=public_id,
                cluster_name=name,
                dimension=line.dimension,
                segment_start=line.first_hour,
                segment_end=line.last_hour + HOUR,
                quantity=line.quantity,
                unit_price_micros=line.price.micros,
                per_units=line.price.per_units,
                amount_micros=line.micros,
                amount_cents=line.cents,
                remainder_micros=line.remainder_micros,
                kind=line.kind,
                estimated=estimated,
            )
        )
    return records


# When ---------------------------------------------------------------------------------------


def metered_through() -> datetime | None:
    """Up to when every cell's metering is closed (the lowest watermark); ``None`` while a
    cell has never been metered."""
    cells = Cell.objects.count()
    watermarks = list(MeteringCursor.objects.values_list("watermark", flat=True))
    if not cells or len(watermarks) < cells:
        return None
    return min(watermarks)


def closable_month(now: datetime) -> datetime | None:
    """The start of the latest month that may be closed now, if any."""
    through = metered_through()
    if through is None:
        return None
    grace = timedelta(seconds=settings.SLUICE_BILLING_CLOSE_GRACE_SECONDS)
    latest = previous_month_start(now)
    if through < period_of(latest)[1] + grace:
        return None
    return latest


def organizations_to_close(period_start: datetime) -> list[int]:
    """The organizations with something to bill for the month (a cluster that lived in it, or
    an adjustment no invoice carries) whose month is not closed yet (those waiting for
    incomplete hours included)."""
    start, end = period_of(period_start)
    lived = Cluster.unscoped_all_tenants.filter(created_at__lt=end).filter(
        Q(deleted_at__isnull=True) | Q(deleted_at__gte=start)
    )
    unbilled = UsageAdjustment.unscoped_all_tenants.filter(billed_period_start__isnull=True)
    closed = ClosedMonth.unscoped_all_tenants.filter(period_start=start)
    return list(
        Organization.objects.filter(
            Q(pk__in=lived.values("organization_id")) | Q(pk__in=unbilled.values("organization_id"))
        )
        .exclude(pk__in=closed.values("organization_id"))
        .order_by("pk")
        .values_list("pk", flat=True)
    )


# Closing ------------------------------------------------------------------------------------


def invoice_close(
    *, organization: Organization, period_start: datetime, now: datetime | None = None
) -> Outcome:
    """Close one organization's month (see the module's docstring); safe to run twice, or
    twice at once."""
    return month_close(period_start=period_start, organization_ids=[organization.pk], now=now)[
        organization.pk
    ]


def month_close(
    *,
    period_start: datetime,
    organization_ids: Iterable[int],
    now: datetime | None = None,
    batch_size: int | None = None,
) -> dict[int, Outcome]:
    """Close the month of each organization, a batch per transaction."""
    now = now or timezone.now()
    start, _ = period_of(period_start)
    batch_size = batch_size or settings.SLUICE_BILLING_CLOSE_BATCH
    pending = sorted(set(organization_ids))
    outcomes: dict[int, Outcome] = {}
    for index in range(0, len(pending), batch_size):
        outcomes.update(_close_batch(start, pending[index : index + batch_size], now))
    return outcomes


def _close_batch(start: datetime, organization_ids: list[int], now: datetime) -> dict[int, Outcome]:
    outcomes: dict[int, Outcome] = {}
    with transaction.atomic():
        organizations = list(
            Organization.objects.select_for_update(no_key=True)
            .filter(pk__in=organization_ids)
            .order_by("pk")
        )
        closed = set(
            ClosedMonth.unscoped_all_tenants.filter(
                organization_id__in=organization_ids, period_start=start
            ).values_list("organization_id", flat=True)
        )
        for pk in closed:
            outcomes[pk] = Outcome.ALREADY
        todo = [o for o in organizations if o.pk not in closed]
        if not todo:
            return outcomes
        reader = _MonthReader(start, [o.pk for o in todo])
        for organization in todo:
            try:
                with transaction.atomic(), tenant_scope(organization):
                    outcomes[organization.pk] = _close_one(organization, reader, now)
            except Exception as error:  # one organization's failure must not stop the others
                alert_raise(
                    kind=AlertKind.CLOSE_FAILED,
                    subject=f"{organization.public_id}:{start:%Y-%m}",
                    organization=organization,
                    message=f"The month close of {start:%Y-%m} failed: {error!r}",
                )
                outcomes[organization.pk] = Outcome.FAILED
    return outcomes


def _close_one(organization: Organization, reader: _MonthReader, now: datetime) -> Outcome:
    start, end = reader.start, reader.end
    # A closed organization's last month ends, for billing, when the organization closed.
    ended = min(end, organization.closed_at) if organization.closed_at else end
    waited = now - ended >= timedelta(seconds=settings.SLUICE_BILLING_INCOMPLETE_GRACE_SECONDS)
    if not waited and reader.incomplete(organization.pk):
        return Outcome.WAITING
    account = billing_account_of(organization=organization)
    estimated = reader.incomplete(organization.pk)
    ClosedMonth.objects.create(
        organization=organization, period_start=start, closed_at=now, estimated=estimated
    )
    UsageAdjustment.objects.filter(billed_period_start=None).update(billed_period_start=start)
    rated = reader.rated(organization, adjustments_billed_on=start)
    draft = Invoice.objects.filter(period_start=start, state=InvoiceState.DRAFT).first()
    if not rated.lines:
        if draft is not None:
            draft.delete()  # a draft of nothing: no invoice for a month with nothing to bill
        return Outcome.NOTHING
    invoice = invoice_record(
        organization=organization,
        year=start.year,
        month=start.month,
        lines=rated.lines,
        state=InvoiceState.OPEN,
    )
    invoice.billed_to = billed_to_snapshot(account)
    invoice.save(update_fields=["billed_to"])
    outbox_add(invoice=invoice)
    export_after_close(organization=organization, period_start=start)
    audit_record(
        organization=organization,
        actor=CLOSER,
        action="invoice.closed",
        target=invoice,
        before={"state": InvoiceState.DRAFT},
        after={
            "state": InvoiceState.OPEN,
            "total_cents": invoice.total_cents,
            "lines": len(rated.lines),
            "estimated": invoice.estimated,
        },
    )
    if not rated.estimated:
        return Outcome.CLOSED
    alert_raise(
        kind=AlertKind.ESTIMATED_CLOSE,
        subject=invoice.public_id,
        organization=organization,
        message=(
            f"The invoice of {start:%Y-%m} for {organization.public_id} was closed with hours"
            f" still incomplete {settings.SLUICE_BILLING_INCOMPLETE_GRACE_SECONDS} s after the"
            " month's end; its estimated lines are marked."
        ),
    )
    return Outcome.ESTIMATED


def drafts_refresh(
    *, period_start: datetime, organization_ids: Iterable[int], batch_size: int | None = None
) -> int:
    """Recompute the month-to-date draft of each organization's month (provisional: the
    ledger as it is now), a batch of organizations per read; returns how many drafts were
    written. A month closed meanwhile is left alone. A draft shows the adjustments no invoice
    carries yet when it is the organization's oldest month still open to them."""
    start, _ = period_of(period_start)
    batch_size = batch_size or settings.SLUICE_BILLING_CLOSE_BATCH
    pending = sorted(set(organization_ids))
    written = 0
    for index in range(0, len(pending), batch_size):
        batch = pending[index : index + batch_size]
        reader = _MonthReader(start, batch)
        for organization in Organization.objects.filter(pk__in=batch).order_by("pk"):
            with tenant_scope(organization):
                written += _draft_one(organization, reader) is not None
    return written


def draft_refresh(*, organization: Organization, period_start: datetime) -> Invoice | None:
    """Recompute one organization's draft of the month (``drafts_refresh``)."""
    return _draft_one(organization, _MonthReader(period_of(period_start)[0], [organization.pk]))


def _draft_one(organization: Organization, reader: _MonthReader) -> Invoice | None:
    start = reader.start
    with transaction.atomic():
        Organization.objects.select_for_update(no_key=True).get(pk=organization.pk)
        if ClosedMonth.objects.filter(period_start=start).exists():
            return None
        earlier_draft = Invoice.objects.filter(
            state=InvoiceState.DRAFT, period_start__lt=start
        ).exists()
        rated = reader.rated(organization, unbilled_adjustments=not earlier_draft)
        if not rated.lines:
            return None
        try:
            return invoice_record(
                organization=organization,
                year=start.year,
                month=start.month,
                lines=rated.lines,
                state=InvoiceState.DRAFT,
            )
        except Conflict:
            return None  # closed meanwhile
