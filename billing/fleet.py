"""Billing's part of the operators' fleet dashboard (``clusters.fleet``'s registries, from
``BillingConfig.ready``): the organizations that cost the most this month, with their traffic;
each cell's metering lag; the open billing alerts."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Sum
from django.utils import timezone
from django.utils.timesince import timesince

from clusters.fleet import CellFact, FleetSection, register_cell_fact, register_fleet_section
from clusters.models import Cell, Dimension

from .models import BillingAlert, Invoice, InvoiceState, MeteringCursor, UsageHour
from .presentation import usage_amount, usd
from .services import month_start

TOP_ORGANIZATIONS = 10
# Metering closes an hour a while after it ends (late samples); a watermark further behind
# than this means the cell's runs are failing or not running.
METERING_LAG_ALARM = timedelta(hours=3)
TRAFFIC = (Dimension.INGRESS_BYTES, Dimension.EGRESS_BYTES)


def top_organizations(*, now: datetime | None = None) -> dict:
    """The month's costliest organizations, from their month-to-date drafts (rated from the
    ledger by beat every 15 minutes: one indexed read here, not a rating per page load), with
    the bytes they wrote and read this month."""
    start = month_start(now or timezone.now())
    drafts = list(
        Invoice.unscoped_all_tenants.filter(state=InvoiceState.DRAFT, period_start=start)
        .select_related("organization")
        .order_by("-total_micros", "organization_id")[:TOP_ORGANIZATIONS]
    )
    traffic = {
        (organization_id, dimension): total
        for organization_id, dimension, total in UsageHour.unscoped_all_tenants.filter(
            organization_id__in=[draft.organization_id for draft in drafts],
            hour__gte=start,
            dimension__in=TRAFFIC,
        )
        .values_list("organization_id", "dimension")
        .annotate(total=Sum("quantity"))
        .values_list("organization_id", "dimension", "total")
    }
    return {
        "month": start,
        "rows": [
            {
                "organization": draft.organization,
                "cost": usd(draft.total_cents),
                "ingress": usage_amount(
                    traffic.get((draft.organization_id, Dimension.INGRESS_BYTES), 0), "bytes"
                ),
                "egress": usage_amount(
                    traffic.get((draft.organization_id, Dimension.EGRESS_BYTES), 0), "bytes"
                ),
                "rated_at": draft.rated_at,
            }
            for draft in drafts
        ],
    }


def metering_lag(cells: list[Cell], *, now: datetime | None = None) -> dict[int, tuple[str, bool]]:
    """Per cell: how far behind now its metering watermark is (hours closed up to it), and
    the last run's error if it failed."""
    now = now or timezone.now()
    cursors = {
        cursor.cell_id: cursor
        for cursor in MeteringCursor.objects.filter(cell__in=[cell.pk for cell in cells])
    }
    lags = {}
    for cell in cells:
        cursor = cursors.get(cell.pk)
        if not cell.prometheus_url:
            lags[cell.pk] = ("not metered (no Prometheus)", False)
        elif cursor is None:
            lags[cell.pk] = ("not metered yet", False)
        else:
            behind = now - cursor.watermark
            text = f"{timesince(cursor.watermark, now)} behind"
            if cursor.last_error:
                text += f"; last run failed: {cursor.last_error[:200]}"
            lags[cell.pk] = (text, behind > METERING_LAG_ALARM or bool(cursor.last_error))
    return lags


def open_alerts() -> dict:
    return {
        "alerts": list(
            BillingAlert.objects.filter(resolved_at__isnull=True).select_related("organization")[
                :50
            ]
        )
    }


def register() -> None:
    register_cell_fact(CellFact("metering", "Metering watermark", metering_lag, position=10))
    register_fleet_section(
        FleetSection(
            key="top-organizations",
            title="Top organizations this month",
            template="admin/billing/fleet_top_organizations.html",
            context=top_organizations,
            position=20,
        )
    )
    register_fleet_section(
        FleetSection(
            key="billing-alerts",
            title="Open billing alerts",
            template="admin/billing/fleet_alerts.html",
            context=open_alerts,
            position=30,
        )
    )
