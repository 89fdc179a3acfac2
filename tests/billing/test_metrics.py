"""Billing's figures on /metrics against real PostgreSQL rows: each cell's metering watermark
lag and failed run, and each outbox's backlog (how many wait, how long the oldest has)."""

from datetime import UTC, datetime, timedelta

import pytest

from billing import metrics
from billing.models import (
    BudgetAlert,
    BudgetAlertKind,
    DeliveryState,
    MeteringCursor,
    OutboxState,
    StripeOutbox,
    WebhookDelivery,
)
from tenants.models import Organization
from tenants.scoping import tenant_scope
from tests.billing.outbox_support import closed_invoice
from tests.factories import UserFactory, make_cell, make_org
from tests.support.metrics import samples, value

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_each_metered_cells_watermark_lag_and_whether_its_last_run_failed():
    behind = make_cell(slug="eu-behind", prometheus_url="http://prometheus.eu.internal:9090")
    failing = make_cell(slug="eu-failing", prometheus_url="http://prometheus.eu2.internal:9090")
    unmetered = make_cell(slug="eu-unmetered")  # no Prometheus: nothing is metered there
    MeteringCursor.objects.create(cell=behind, watermark=NOW - timedelta(hours=2, minutes=30))
    MeteringCursor.objects.create(
        cell=failing, watermark=NOW - timedelta(hours=1), last_error="Prometheus answered 503"
    )
    MeteringCursor.objects.create(cell=unmetered, watermark=NOW - timedelta(days=30))

    found = samples(metrics.metering_figures(now=NOW))

    assert found == {
        ("sluice_metering_watermark_lag_seconds", frozenset({("cell", "eu-behind")})): 9_000.0,
        ("sluice_metering_watermark_lag_seconds", frozenset({("cell", "eu-failing")})): 3_600.0,
        ("sluice_metering_last_run_failed", frozenset({("cell", "eu-behind")})): 0.0,
        ("sluice_metering_last_run_failed", frozenset({("cell", "eu-failing")})): 1.0,
    }


def pending_webhook(organization, *, threshold: str, waiting: timedelta) -> WebhookDelivery:
    with tenant_scope(organization):
        alert = BudgetAlert.objects.create(
            organization=organization,
            period_start=datetime(2026, 11, 1, tzinfo=UTC),
            threshold=threshold,
            kind=BudgetAlertKind.THRESHOLD,
            budget_micros=100_000_000,
            month_to_date_micros=50_000_000,
            forecast_micros=90_000_000,
            fired_at=NOW,
        )
        delivery = WebhookDelivery.objects.create(
            organization=organization,
            alert=alert,
            event_type=BudgetAlertKind.THRESHOLD,
            body="{}",
            next_attempt_at=NOW,
        )
    WebhookDelivery.unscoped_all_tenants.filter(pk=delivery.pk).update(created_at=NOW - waiting)
    return delivery


def test_each_outbox_counts_what_waits_and_how_long_the_oldest_has():
    acme = make_org(owner=UserFactory(), name="Acme")
    # Stripe: one push waiting 40 minutes, one refused (waiting for an operator, not pending).
    waiting_push = StripeOutbox.unscoped_all_tenants.get(invoice=closed_invoice(acme))
    StripeOutbox.unscoped_all_tenants.filter(pk=waiting_push.pk).update(
        created_at=NOW - timedelta(minutes=40)
    )
    refused_org = make_org(owner=UserFactory(), name="Refused")
    refused = StripeOutbox.unscoped_all_tenants.get(invoice=closed_invoice(refused_org))
    StripeOutbox.unscoped_all_tenants.filter(pk=refused.pk).update(state=OutboxState.FAILED)
    # Webhooks: two pending (5 and 90 seconds), one delivered.
    pending_webhook(acme, threshold="50", waiting=timedelta(seconds=5))
    pending_webhook(acme, threshold="80", waiting=timedelta(seconds=90))
    delivered = pending_webhook(acme, threshold="100", waiting=timedelta(hours=5))
    WebhookDelivery.unscoped_all_tenants.filter(pk=delivered.pk).update(
        state=DeliveryState.DELIVERED
    )
    # Final invoices: an organization closed 3 hours ago, its month of closing not closed.
    gone = make_org(owner=UserFactory(), name="Gone")
    Organization.objects.filter(pk=gone.pk).update(closed_at=NOW - timedelta(hours=3))

    found = samples(metrics.outbox_figures(now=NOW))

    assert value(found, "sluice_outbox_pending", outbox="stripe") == 1
    assert value(found, "sluice_outbox_oldest_pending_age_seconds", outbox="stripe") == 2_400
    assert value(found, "sluice_outbox_pending", outbox="webhooks") == 2
    assert value(found, "sluice_outbox_oldest_pending_age_seconds", outbox="webhooks") == 90
    assert value(found, "sluice_outbox_pending", outbox="final_invoices") == 1
    assert (
        value(found, "sluice_outbox_oldest_pending_age_seconds", outbox="final_invoices") == 10_800
    )
    assert value(found, "sluice_stripe_pushes_failed") == 1


def test_empty_outboxes_read_zero_waiting_and_zero_age():
    found = samples(metrics.outbox_figures(now=NOW))
    for outbox in ("stripe", "webhooks", "final_invoices"):
        assert value(found, "sluice_outbox_pending", outbox=outbox) == 0
        assert value(found, "sluice_outbox_oldest_pending_age_seconds", outbox=outbox) == 0
    assert value(found, "sluice_stripe_pushes_failed") == 0
