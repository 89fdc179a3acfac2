"""The month close: an organization's calendar month (UTC) becomes a final invoice, once.

When: after every cell's metering watermark has passed the month's end plus
``SLUICE_BILLING_CLOSE_GRACE_SECONDS`` (late samples are no longer awaited). An organization
whose month still holds incomplete hours (a Prometheus gap) waits up to
``SLUICE_BILLING_INCOMPLETE_GRACE_SECONDS`` after the month's end for them to be filled; after
that it closes with what is known, its lines holding an incomplete hour are marked estimated,
and the operators get an alert. Whatever metering learns later about a final hour becomes an
adjustment on the next invoice.

What, in one transaction, holding the organization's billing account locked (two closes at
once: the second waits, then finds the invoice closed and does nothing):

1. every hour of the month is marked final (``final_at``) first, so that from then on a
   recomputation cannot change what is being rated (it becomes an adjustment instead);
2. the adjustments no closed invoice carries yet are claimed for this month's invoice;
3. the month is rated (``billing.rating.rate``, the one rating function) and recorded as the
   ``open`` invoice (``billing.invoices.invoice_record``), replacing the month-to-date draft;
4. its push to Stripe is queued in the outbox (``billing.outbox.outbox_add``).

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

from .accounts import billing_account_of
from .alerts import alert_raise
from .invoices import LineRecord, invoice_record, month_period
from .models import (
    AlertKind,
    BillingAccount,
    Invoice,
    InvoiceState,
    MeteringCursor,
    UsageAdjustment,
    UsageHour,
)
from .outbox import outbox_add
from .rating import HOUR, Line, price_spans, rate
from .rating_inputs import adjustment_rows, price_book, tier_history, usage_summed

CLOSER = Actor(system="month-close")
Gap = tuple[int, str, datetime]  # (cluster, dimension, hour) of an incomplete hour
_NAMED = ("pk", "public_id", "name")


class Outcome(enum.StrEnum):
    CLOSED = "closed"
    ESTIMATED = "closed-estimated"
    WAITING = "waiting-for-incomplete-hours"
    NOTHING = "nothing-to-bill"
    ALREADY = "already-closed"


def month_start_of(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def previous_month_start(moment: datetime) -> datetime:
    return month_start_of(month_start_of(moment) - timedelta(days=1))


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
    start, end = period_of(period_start)
    prices, tiers = price_book(), tier_history(organization=organization)
    usage = usage_summed(
        organization=organization,
        start=start,
        end=end,
        boundaries=prices.changes_between(start, end),
        hourly_clusters=tiers.changed_between(start, end),
    )
    adjustments = (
        adjustment_rows(organization=organization, billed_period_start=adjustments_billed_on)
        if adjustments_billed_on is not None or unbilled_adjustments
        else ()
    )
    lines = rate(usage.rows, price_spans(prices, tiers), adjustments)
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


def organizations_to_close(period_start: datetime) -> list[str]:
    """Public ids of the organizations with something to bill for the month (a cluster that
    lived in it, or an adjustment no invoice carries) and no closed invoice for it."""
    start, end = period_of(period_start)
    lived = Cluster.unscoped_all_tenants.filter(created_at__lt=end).filter(
        Q(deleted_at__isnull=True) | Q(deleted_at__gte=start)
    )
    unbilled = UsageAdjustment.unscoped_all_tenants.filter(billed_period_start__isnull=True)
    closed = Invoice.unscoped_all_tenants.filter(period_start=start).exclude(
        state__in=(InvoiceState.DRAFT, InvoiceState.VOID)
    )
    return list(
        Organization.objects.filter(
            Q(pk__in=lived.values("organization_id")) | Q(pk__in=unbilled.values("organization_id"))
        )
        .exclude(pk__in=closed.values("organization_id"))
        .order_by("pk")
        .values_list("public_id", flat=True)
    )


def waiting_drafts(before: datetime) -> list[tuple[str, datetime]]:
    """Drafts of months that ended before ``before``: closes still waiting for their hours."""
    return list(
        Invoice.unscoped_all_tenants.filter(state=InvoiceState.DRAFT, period_end__lte=before)
        .order_by("period_start", "pk")
        .values_list("organization__public_id", "period_start")
    )


# Closing ------------------------------------------------------------------------------------


def invoice_close(
    *, organization: Organization, period_start: datetime, now: datetime | None = None
) -> Outcome:
    """Close the organization's month (see the module's docstring); safe to run twice, or
    twice at once."""
    now = now or timezone.now()
    start, end = period_of(period_start)
    billing_account_of(organization=organization)
    with transaction.atomic():
        BillingAccount.objects.select_for_update().get(organization=organization)
        invoice = (
            Invoice.objects.filter(organization=organization, period_start=start)
            .exclude(state=InvoiceState.VOID)
            .first()
        )
        if invoice is not None and invoice.state != InvoiceState.DRAFT:
            return Outcome.ALREADY
        hours = UsageHour.objects.filter(organization=organization, hour__gte=start, hour__lt=end)
        waited = now - end >= timedelta(seconds=settings.SLUICE_BILLING_INCOMPLETE_GRACE_SECONDS)
        if not waited and hours.filter(complete=False).exists():
            return Outcome.WAITING
        hours.filter(final_at__isnull=True).update(final_at=now)
        UsageAdjustment.objects.filter(organization=organization, billed_period_start=None).update(
            billed_period_start=start
        )
        rated = month_rated(
            organization=organization, period_start=start, adjustments_billed_on=start
        )
        if not rated.lines:
            if invoice is not None:
                invoice.delete()  # a draft of nothing: no invoice for a month with no usage
            return Outcome.NOTHING
        invoice = invoice_record(
            organization=organization,
            year=start.year,
            month=start.month,
            lines=rated.lines,
            state=InvoiceState.OPEN,
        )
        outbox_add(invoice=invoice)
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
                f"The invoice of {start:%Y-%m} for {organization.public_id} was closed with"
                f" hours still incomplete {settings.SLUICE_BILLING_INCOMPLETE_GRACE_SECONDS} s"
                " after the month's end; its estimated lines are marked."
            ),
        )
        return Outcome.ESTIMATED


def draft_refresh(*, organization: Organization, period_start: datetime) -> Invoice | None:
    """Recompute the organization's month-to-date draft of the month; ``None`` when the month
    is closed already or has nothing to bill. The draft shows the adjustments no invoice
    carries yet when it is the organization's oldest month still open to them."""
    start, _ = period_of(period_start)
    billing_account_of(organization=organization)
    with transaction.atomic():
        BillingAccount.objects.select_for_update().get(organization=organization)
        invoices = Invoice.objects.filter(organization=organization).exclude(
            state=InvoiceState.VOID
        )
        if invoices.filter(period_start=start).exclude(state=InvoiceState.DRAFT).exists():
            return None
        earlier_draft = invoices.filter(state=InvoiceState.DRAFT, period_start__lt=start)
        rated = month_rated(
            organization=organization,
            period_start=start,
            unbilled_adjustments=not earlier_draft.exists(),
        )
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
