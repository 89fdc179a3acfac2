"""The final invoice of a closed organization.

Closing an organization (``tenants.services.organization_close``) ends access at once and does
not wait for metering. Its last months are closed here instead, by beat
(``billing.tasks.close_closed_organizations``): once every cell's metering watermark
(``closing.metered_through``) has passed the end of the hour it was closed in plus
``SLUICE_BILLING_CLOSE_GRACE_SECONDS``, each of its months not closed yet, up to and including
the month it was closed in, is closed by the month close (``closing.month_close``: the same
rating, the adjustments no invoice carries, the invoice recorded open and its push to Stripe
queued in the outbox), without waiting for the month's end. No cluster lived after the
closing, so the last invoice covers the 1st of that month up to the closing; a month with
nothing to bill is closed with no invoice. The regular month close finds these months closed
(``ClosedMonth``) and leaves them alone, and a second run here finds nothing to do.

Incomplete hours are waited for as in every month close: up to
``SLUICE_BILLING_INCOMPLETE_GRACE_SECONDS`` after the month's end, then closed estimated.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.db.models.functions import TruncMonth
from django.utils import timezone

from clusters.models import Cluster
from tenants.models import Organization

from .closing import CLOSED_OUTCOMES, Outcome, metered_through, month_close
from .models import ClosedMonth
from .services import month_start

HOUR = timedelta(hours=1)
# A month so ended goes on to the next; any other (waiting for incomplete hours, failed and
# alerted) stops the organization's turn, and the next run tries it again.
DONE = CLOSED_OUTCOMES | {Outcome.NOTHING, Outcome.ALREADY}


def without_final_invoice():
    """The closed organizations whose month of closing is not closed yet."""
    month_of_closing_closed = ClosedMonth.unscoped_all_tenants.filter(
        organization=OuterRef("pk"), period_start=OuterRef("month_of_closing")
    )
    return (
        Organization.objects.filter(closed_at__isnull=False)
        .annotate(month_of_closing=TruncMonth("closed_at", tzinfo=UTC))
        .exclude(Exists(month_of_closing_closed))
    )


def organizations_awaiting_final_invoice(*, through: datetime) -> list[Organization]:
    """The closed organizations whose month of closing is not closed yet and that metering,
    having read every cell up to ``through``, has caught up with (the grace included)."""
    grace = timedelta(seconds=settings.SLUICE_BILLING_CLOSE_GRACE_SECONDS)
    # The hour it was closed in ends at most an hour after: metering must have passed it.
    return list(
        without_final_invoice().filter(closed_at__lte=through - grace - HOUR).order_by("pk")
    )


def months_to_close(organization: Organization) -> list[datetime]:
    """The starts of the organization's months not closed yet, oldest first, from the month
    its first cluster was created in (nothing before it is billed) to the month it was closed
    in."""
    last = month_start(organization.closed_at)
    first_cluster = (
        Cluster.unscoped_all_tenants.filter(organization=organization)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    month = month_start(first_cluster) if first_cluster is not None else last
    closed = set(
        ClosedMonth.unscoped_all_tenants.filter(
            organization=organization, period_start__gte=month
        ).values_list("period_start", flat=True)
    )
    months = []
    while month <= last:
        if month not in closed:
            months.append(month)
        month = month_start(month + timedelta(days=32))
    return months


def final_invoices_close(*, now: datetime | None = None) -> int:
    """Close the last months of every closed organization metering has caught up with (see
    the module's docstring); returns how many invoices were closed. Safe to run twice, or
    twice at once: the month close locks each organization and closes a month once."""
    now = now or timezone.now()
    through = metered_through()
    if through is None:
        return 0
    closed = 0
    for organization in organizations_awaiting_final_invoice(through=through):
        for month in months_to_close(organization):
            outcome = month_close(period_start=month, organization_ids=[organization.pk], now=now)[
                organization.pk
            ]
            closed += outcome in CLOSED_OUTCOMES
            if outcome not in DONE:
                break
    return closed
