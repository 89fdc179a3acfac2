"""Billing's figures on the control plane's /metrics (``foundation.metrics``'s registry, from
``BillingConfig.ready``), computed at each scrape:

- each cell's metering watermark lag (how far behind now the hours it has closed end, as the
  fleet dashboard shows it), and whether its last run failed; a cell without a Prometheus is
  not metered and a cell not metered yet has no cursor: neither has a series;
- the backlog of each outbox: pushes to Stripe, posts to customers' webhooks, and closed
  organizations still waiting for their final invoice — how many wait and since when the
  oldest does — and the pushes Stripe refused, which wait for an operator;
- the ledger hours in its DEFAULT partition (PostgreSQL): 0 unless a month lacked its
  partition, a defect the next partitions run repairs.

Labels name cells (the operators' own) and outboxes, never a tenant."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import Metric

from foundation.metrics import gauge, register_scrape_collector

from . import ledger_partitions
from .final_invoices import without_final_invoice
from .models import (
    DeliveryState,
    MeteringCursor,
    OutboxState,
    StripeOutbox,
    WebhookDelivery,
)


def metering_figures(*, now: datetime | None = None) -> Iterator[Metric]:
    now = now or timezone.now()
    lag = gauge(
        "sluice_metering_watermark_lag_seconds",
        "How far behind now the cell's metering watermark (the end of its last closed hour) is.",
        labels=["cell"],
    )
    failed = gauge(
        "sluice_metering_last_run_failed",
        "1 when the cell's last metering run failed.",
        labels=["cell"],
    )
    cursors = (
        MeteringCursor.objects.exclude(cell__prometheus_url="")
        .select_related("cell")
        .order_by("cell__slug")
    )
    for cursor in cursors:
        lag.add_metric([cursor.cell.slug], (now - cursor.watermark).total_seconds())
        failed.add_metric([cursor.cell.slug], 1 if cursor.last_error else 0)
    yield lag
    yield failed


def outbox_backlogs() -> dict[str, tuple[int, datetime | None]]:
    """Per outbox: how many wait, and since when the oldest does."""
    waiting = {
        "stripe": StripeOutbox.unscoped_all_tenants.filter(state=OutboxState.PENDING).aggregate(
            count=Count("pk"), oldest=Min("created_at")
        ),
        "webhooks": WebhookDelivery.unscoped_all_tenants.filter(
            state=DeliveryState.PENDING
        ).aggregate(count=Count("pk"), oldest=Min("created_at")),
        "final_invoices": without_final_invoice().aggregate(
            count=Count("pk"), oldest=Min("closed_at")
        ),
    }
    return {name: (row["count"], row["oldest"]) for name, row in waiting.items()}


def outbox_figures(*, now: datetime | None = None) -> Iterator[Metric]:
    now = now or timezone.now()
    pending = gauge("sluice_outbox_pending", "Items waiting in the outbox.", labels=["outbox"])
    age = gauge(
        "sluice_outbox_oldest_pending_age_seconds",
        "How long the outbox's oldest waiting item has waited (0: none waits).",
        labels=["outbox"],
    )
    for name, (count, oldest) in outbox_backlogs().items():
        pending.add_metric([name], count)
        age.add_metric([name], (now - oldest).total_seconds() if oldest else 0)
    yield pending
    yield age
    yield gauge(
        "sluice_stripe_pushes_failed",
        "Invoice pushes Stripe refused, waiting for an operator to retry them from the admin.",
        StripeOutbox.unscoped_all_tenants.filter(state=OutboxState.FAILED).count(),
    )


def ledger_figures() -> Iterator[Metric]:
    if ledger_partitions.partitioned():
        yield gauge(
            "sluice_ledger_default_partition_rows",
            "Ledger hours in the default partition: months without their partition (a defect).",
            ledger_partitions.default_rows(),
        )


def register() -> None:
    register_scrape_collector("metering", metering_figures)
    register_scrape_collector("outboxes", outbox_figures)
    register_scrape_collector("ledger", ledger_figures)
