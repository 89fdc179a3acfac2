"""The operators' side of the Stripe outbox in the admin: every push with its state and last
error, read-only, a "retry now" that queues a failed push again (resolving its alert), the
billing alerts with a "mark resolved", and each invoice's Stripe sync state."""

import pytest
from django.test import override_settings

from billing import outbox
from billing.models import AlertKind, BillingAlert, StripeOutbox
from tenants.models import AuditEvent
from tests.factories import UserFactory, make_org

from .outbox_support import assert_pushed_exactly_once, closed_invoice, row_of, stripe_at

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def refused(stripe_standin):
    """An invoice whose push Stripe refused (a revoked key: 401)."""
    invoice = closed_invoice(make_org(owner=UserFactory(), name="Acme"))
    with override_settings(STRIPE_API_KEY="sk_live_revoked", STRIPE_API_BASE=stripe_standin.url):
        outbox.outbox_push_due()
    assert row_of(invoice).state == "failed"
    return invoice


def test_operators_see_each_push_and_its_error_and_change_nothing(operator_client, refused):
    row = row_of(refused)
    listed = operator_client.get("/admin/billing/stripeoutbox/?state=failed").content.decode()
    assert refused.public_id in listed
    assert "Stripe 401" in listed
    assert "Retry now" in listed
    page = operator_client.get(f"/admin/billing/stripeoutbox/{row.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()  # read-only
    assert operator_client.post(f"/admin/billing/stripeoutbox/{row.pk}/delete/").status_code == 403


def test_retry_now_pushes_a_refused_invoice_once_its_cause_is_fixed(
    operator_client, refused, stripe_standin
):
    row = row_of(refused)
    response = operator_client.post(
        "/admin/billing/stripeoutbox/",
        {"action": "retry_now", "_selected_action": [row.pk]},
        follow=True,
    )
    assert "1 push(es) queued again" in response.content.decode()
    row.refresh_from_db()
    assert row.state == "pending"
    alert = BillingAlert.objects.get(kind=AlertKind.STRIPE_REFUSED, subject=refused.public_id)
    assert alert.resolved_at is not None
    retried = AuditEvent.unscoped_all_tenants.get(action="invoice.stripe_push_retried")
    assert retried.actor_user.is_staff
    assert retried.before == {"outbox_state": "failed"}

    with stripe_at(stripe_standin.url):  # the key was fixed
        assert outbox.outbox_push_due() == 1
    assert_pushed_exactly_once(stripe_standin, refused)


def test_alerts_are_listed_and_resolved(operator_client, refused):
    alert = BillingAlert.objects.get(subject=refused.public_id)
    listed = operator_client.get("/admin/billing/billingalert/?open=yes").content.decode()
    assert refused.public_id in listed
    assert "Stripe refused a push" in listed
    operator_client.post(
        "/admin/billing/billingalert/",
        {"action": "resolve", "_selected_action": [alert.pk]},
        follow=True,
    )
    alert.refresh_from_db()
    assert alert.resolved_at is not None
    assert (
        refused.public_id
        not in operator_client.get("/admin/billing/billingalert/?open=yes").content.decode()
    )
    # Resolving the alert is not retrying: the push waits for a retry.
    assert StripeOutbox.unscoped_all_tenants.get(invoice=refused).state == "failed"


def test_invoices_show_their_stripe_sync_state(operator_client, refused, stripe_standin):
    listed = operator_client.get("/admin/billing/invoice/?outbox__state=failed").content.decode()
    assert refused.public_id in listed
    assert "failed: Stripe 401" in listed

    outbox.outbox_retry(outbox=row_of(refused), actor=outbox.SYSTEM)
    with stripe_at(stripe_standin.url):
        outbox.outbox_push_due()
    refused.refresh_from_db()
    page = operator_client.get(f"/admin/billing/invoice/{refused.pk}/change/").content.decode()
    assert "Stripe sync" in page
    assert "pushed 20" in page
    assert refused.stripe_invoice_id in page
    line = refused.lines.model.unscoped_all_tenants.filter(invoice=refused).first()
    assert line.stripe_invoice_item_id in page


@override_settings(STRIPE_API_KEY="")
def test_without_a_stripe_key_the_admin_says_nothing_is_pushed(operator_client):
    invoice = closed_invoice(make_org(owner=UserFactory(), name="Acme"))
    listed = operator_client.get("/admin/billing/stripeoutbox/").content.decode()
    assert "Stripe is not configured (no STRIPE_API_KEY): nothing is pushed" in listed
    page = operator_client.get(f"/admin/billing/invoice/{invoice.pk}/change/").content.decode()
    assert "pending: Stripe is not configured (no STRIPE_API_KEY), nothing is pushed" in page
