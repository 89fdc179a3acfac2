"""Stripe's webhook: deliveries signed here, in the test, with the endpoint's secret, the way
Stripe signs them (``Stripe-Signature: t=<unix time>,v1=<HMAC-SHA256 of "<t>.<body>">``),
independently of the code under test; then what the stored event does to Sluice's invoices and
billing accounts.

Without an API key (most tests) an event is applied from the snapshot it carries. With one,
the invoice or customer is read again from the stateful Stripe stand-in (its answers are
Stripe's shapes; stripe-mock, being stateless, could not say that an invoice was paid since).
The task runs inline (eager), and once in a real Celery worker.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from billing import stripe_events
from billing.accounts import billing_account_of
from billing.invoices import invoice_record
from billing.models import (
    AlertKind,
    BillingAccount,
    BillingAlert,
    Invoice,
    InvoiceState,
    PaymentStatus,
    StripeEvent,
    StripeEventOutcome,
)
from billing.stripe_gateway import StripeGateway
from billing.webhooks import MAX_BODY_BYTES
from tenants.models import AuditEvent
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, add_member, make_org
from tests.support.clients import session_client
from tests.support.stripe_standin import API_KEY as STANDIN_KEY
from tests.support.stripe_standin import Fault

pytestmark = pytest.mark.django_db

SECRET = "whsec_test_sluice_webhooks"
URL = "/webhooks/stripe/"
FINALIZED = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
FAILED = datetime(2026, 11, 2, 8, 15, tzinfo=UTC)
PAID = datetime(2026, 11, 4, 9, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    settings.STRIPE_API_KEY = ""


# Signing and posting, as Stripe does --------------------------------------------------------


def signature(body: bytes, *, secret: str = SECRET, at: int | None = None) -> str:
    at = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def event(kind: str, obj: dict, *, event_id: str, created: datetime = PAID) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": "2026-08-26.dahlia",
            "created": int(created.timestamp()),
            "livemode": False,
            "pending_webhooks": 1,
            "type": kind,
            "data": {"object": obj},
        }
    ).encode()


def stripe_invoice(
    invoice_id: str,
    status: str,
    *,
    sluice_invoice_id: str = "",
    customer: str = "cus_acme",
    paid_at: datetime | None = None,
) -> dict:
    """An invoice as Stripe sends it, personal details of the customer included."""
    return {
        "id": invoice_id,
        "object": "invoice",
        "customer": customer,
        "customer_email": "ada@acme.test",
        "customer_name": "Ada Lovelace",
        "customer_address": {"line1": "12 Analytical Row", "city": "London", "country": "GB"},
        "status": status,
        "total": 38_500,
        "amount_due": 38_500,
        "currency": "usd",
        "metadata": {"sluice_invoice_id": sluice_invoice_id} if sluice_invoice_id else {},
        "status_transitions": {
            "finalized_at": int(FINALIZED.timestamp()),
            "paid_at": int(paid_at.timestamp()) if paid_at else None,
            "marked_uncollectible_at": None,
            "voided_at": None,
        },
    }


def stripe_customer(customer_id: str, *, payment_method: str | None) -> dict:
    return {
        "id": customer_id,
        "object": "customer",
        "email": "ada@acme.test",
        "name": "Ada Lovelace",
        "invoice_settings": {"default_payment_method": payment_method},
        "default_source": None,
    }


def post(client, body: bytes, header: str | None = None, **extra):
    if header is not None:
        extra["HTTP_STRIPE_SIGNATURE"] = header
    return client.post(URL, data=body, content_type="application/json", **extra)


@pytest.fixture
def deliver(client, django_capture_on_commit_callbacks):
    """Deliver a body signed now with the secret; the queued task runs when the request's
    transaction commits, as in production (inline here)."""

    def deliver(body: bytes):
        with django_capture_on_commit_callbacks(execute=True):
            response = post(client, body, signature(body))
        assert response.status_code == 200, response.content
        return response

    return deliver


# An organization with an open invoice in Stripe ---------------------------------------------


def open_invoice(org, *, stripe_id: str, year: int = 2026, month: int = 10) -> Invoice:
    with tenant_scope(org):
        invoice = invoice_record(organization=org, year=year, month=month, lines=[], state="open")
        Invoice.objects.filter(pk=invoice.pk).update(stripe_invoice_id=stripe_id)
        return Invoice.objects.get(pk=invoice.pk)


def reload(invoice: Invoice) -> Invoice:
    return Invoice.unscoped_all_tenants.get(pk=invoice.pk)


def account(org) -> BillingAccount:
    with tenant_scope(org):
        return billing_account_of(organization=org)


def set_customer(org, customer: str, status: str = PaymentStatus.NONE) -> None:
    account(org)
    BillingAccount.unscoped_all_tenants.filter(organization=org).update(
        stripe_customer_id=customer, payment_status=status
    )


@pytest.fixture
def org():
    return make_org(owner=UserFactory(), name="Acme")


@pytest.fixture
def october(org):
    set_customer(org, "cus_acme", PaymentStatus.OK)
    return open_invoice(org, stripe_id="in_october")


# Verification: nothing unsigned is kept ------------------------------------------------------


def test_a_signed_event_is_applied_and_a_second_delivery_does_nothing(
    client, deliver, october, django_capture_on_commit_callbacks
):
    body = event(
        "invoice.paid", stripe_invoice("in_october", "paid", paid_at=PAID), event_id="evt_paid"
    )

    first = deliver(body)
    with django_capture_on_commit_callbacks() as queued:
        again = post(client, body, signature(body))

    assert queued == []  # the repeat queues no task

    assert first.json() == {"id": "evt_paid", "received": True, "repeat": False}
    assert again.json() == {"id": "evt_paid", "received": True, "repeat": True}
    stored = StripeEvent.objects.get()
    assert (stored.event_id, stored.type, stored.object_id) == (
        "evt_paid",
        "invoice.paid",
        "in_october",
    )
    assert (stored.outcome, stored.organization_id) == (
        StripeEventOutcome.APPLIED,
        october.organization_id,
    )
    assert stored.processed_at is not None
    invoice = reload(october)
    assert (invoice.state, invoice.paid_at) == (InvoiceState.PAID, PAID)
    moves = AuditEvent.unscoped_all_tenants.filter(action="invoice.paid")
    assert [m.actor_label for m in moves] == ["system:stripe-event evt_paid (invoice.paid)"]


@pytest.mark.django_db(transaction=True)
def test_two_deliveries_of_one_event_at_once_store_it_once():
    org = make_org(owner=UserFactory(), name="Acme")
    set_customer(org, "cus_acme", PaymentStatus.OK)
    invoice = open_invoice(org, stripe_id="in_october")
    body = event("invoice.paid", stripe_invoice("in_october", "paid"), event_id="evt_twice")

    def deliver_once(_):
        try:
            return post(Client(), body, signature(body)).status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(deliver_once, range(4)))

    assert statuses == [200] * 4
    assert StripeEvent.objects.filter(event_id="evt_twice").count() == 1
    assert reload(invoice).state == InvoiceState.PAID
    assert AuditEvent.unscoped_all_tenants.filter(action="invoice.paid").count() == 1


def test_the_stored_event_holds_no_personal_details(deliver, october):
    deliver(event("invoice.paid", stripe_invoice("in_october", "paid"), event_id="evt_private"))

    stored = StripeEvent.objects.values().get()
    text = json.dumps(stored, default=str)
    for personal in ("ada@acme.test", "Ada Lovelace", "Analytical Row", "London"):
        assert personal not in text


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "stripe_signature_missing"),
        ("", "stripe_signature_missing"),
        ("t=1,v1=", "stripe_signature_invalid"),
        ("garbage", "stripe_signature_invalid"),
    ],
)
def test_a_delivery_without_a_usable_signature_is_refused(client, october, header, code):
    body = event("invoice.paid", stripe_invoice("in_october", "paid"), event_id="evt_nosig")

    response = post(client, body, header)

    assert_refused(response, 400, code)
    assert reload(october).state == InvoiceState.OPEN


def assert_refused(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert not StripeEvent.objects.exists()


@pytest.mark.parametrize("forgery", ["another secret", "another body"])
def test_a_wrong_signature_is_refused_and_changes_nothing(client, october, forgery):
    body = event("invoice.paid", stripe_invoice("in_october", "paid"), event_id="evt_forged")
    if forgery == "another secret":
        header = signature(body, secret="whsec_someone_else")
    else:
        header = signature(body.replace(b"evt_forged", b"evt_original"))

    response = post(client, body, header)

    assert_refused(response, 400, "stripe_signature_invalid")
    invoice = reload(october)
    assert (invoice.state, invoice.paid_at) == (InvoiceState.OPEN, None)
    assert not AuditEvent.unscoped_all_tenants.filter(action__startswith="invoice.").exists()


def test_a_stale_signature_is_refused(client, october):
    # Signed correctly, 301 seconds ago: past Stripe's library's 300-second tolerance.
    body = event("invoice.paid", stripe_invoice("in_october", "paid"), event_id="evt_stale")

    response = post(client, body, signature(body, at=int(time.time()) - 301))

    assert_refused(response, 400, "stripe_signature_expired")
    assert reload(october).state == InvoiceState.OPEN


@pytest.mark.parametrize(
    "body",
    [
        b"this is not json",
        b"\xff\xfe not even text",
        b'{"hello": "world"}',
        b'{"id": "evt_1", "type": "invoice.paid", "created": 1, "livemode": false, "data": []}',
        b"[]",
        b"null",
        b'{"id": 5, "type": "invoice.paid", "created": 1, "livemode": false, "data": {}}',
    ],
)
def test_a_signed_body_that_is_not_an_event_is_refused(client, body):
    response = post(client, body, signature(body))

    assert_refused(response, 400, "malformed_event")


def test_a_huge_body_is_refused_before_it_is_read(client):
    body = b"{" + b" " * MAX_BODY_BYTES + b"}"

    response = post(client, body, signature(body))

    assert_refused(response, 413, "payload_too_large")


def test_without_a_signing_secret_nothing_is_accepted(client, settings, october):
    settings.STRIPE_WEBHOOK_SECRET = ""
    body = event("invoice.paid", stripe_invoice("in_october", "paid"), event_id="evt_nosecret")

    response = post(client, body, signature(body))

    assert_refused(response, 503, "webhook_not_configured")
    assert "STRIPE_WEBHOOK_SECRET" in response.json()["detail"]


def test_only_post_is_taken(client):
    assert client.get(URL).status_code == 405


def test_no_session_or_csrf_token_is_needed(october):
    strict = Client(enforce_csrf_checks=True)
    body = event("invoice.voided", stripe_invoice("in_october", "void"), event_id="evt_csrf")

    response = post(strict, body, signature(body))

    assert response.status_code == 200, response.content


# Order and state ----------------------------------------------------------------------------


def test_paid_before_finalized_ends_paid(deliver, october):
    paid = stripe_invoice("in_october", "paid", paid_at=PAID)
    finalized = stripe_invoice("in_october", "open")  # the earlier snapshot, delivered late

    deliver(event("invoice.paid", paid, event_id="evt_paid"))
    deliver(event("invoice.finalized", finalized, event_id="evt_finalized", created=FINALIZED))

    invoice = reload(october)
    assert (invoice.state, invoice.paid_at) == (InvoiceState.PAID, PAID)
    late = StripeEvent.objects.get(event_id="evt_finalized")
    assert late.outcome == StripeEventOutcome.UNCHANGED
    assert "nothing moves back" in late.detail


@pytest.mark.parametrize(
    ("kind", "status", "state"),
    [
        ("invoice.voided", "void", InvoiceState.VOID),
        ("invoice.marked_uncollectible", "uncollectible", InvoiceState.UNCOLLECTIBLE),
        ("invoice.finalized", "open", InvoiceState.OPEN),
    ],
)
def test_each_invoice_event_moves_to_stripes_state(deliver, october, kind, status, state):
    deliver(event(kind, stripe_invoice("in_october", status), event_id="evt_one"))

    assert reload(october).state == state


def test_a_draft_paid_in_stripe_is_opened_then_paid(deliver, org):
    with tenant_scope(org):
        draft = invoice_record(organization=org, year=2026, month=10, lines=[])
    body = stripe_invoice("in_new", "paid", sluice_invoice_id=draft.public_id, paid_at=PAID)

    deliver(event("invoice.paid", body, event_id="evt_draft_paid"))

    invoice = reload(draft)
    assert (invoice.state, invoice.finalized_at, invoice.paid_at) == ("paid", FINALIZED, PAID)
    actions = AuditEvent.unscoped_all_tenants.order_by("id").values_list("action", flat=True)
    assert [a for a in actions if a.startswith("invoice.")] == ["invoice.open", "invoice.paid"]


def test_the_invoice_is_found_by_sluices_id_in_stripes_metadata(deliver, org):
    invoice = open_invoice(org, stripe_id="")
    body = stripe_invoice("in_pushed", "paid", sluice_invoice_id=invoice.public_id)

    deliver(event("invoice.paid", body, event_id="evt_by_metadata"))

    assert reload(invoice).state == InvoiceState.PAID


def test_metadata_naming_an_invoice_pushed_as_another_is_not_trusted(deliver, org):
    invoice = open_invoice(org, stripe_id="in_the_real_one")
    body = stripe_invoice("in_impostor", "paid", sluice_invoice_id=invoice.public_id)

    deliver(event("invoice.paid", body, event_id="evt_impostor"))

    assert reload(invoice).state == InvoiceState.OPEN
    assert StripeEvent.objects.get().outcome == StripeEventOutcome.UNKNOWN_OBJECT


def test_an_event_about_an_unknown_invoice_alerts_the_operators(deliver, october):
    deliver(event("invoice.paid", stripe_invoice("in_nobody", "paid"), event_id="evt_stray"))
    deliver(event("invoice.voided", stripe_invoice("in_nobody", "void"), event_id="evt_stray2"))

    outcomes = set(StripeEvent.objects.values_list("outcome", flat=True))
    assert outcomes == {StripeEventOutcome.UNKNOWN_OBJECT}
    alert = BillingAlert.objects.get()  # one open alert about the invoice, not one per event
    assert (alert.kind, alert.subject) == (AlertKind.STRIPE_WEBHOOK, "in_nobody")
    assert "in_nobody" in alert.message
    assert reload(october).state == InvoiceState.OPEN


def test_an_event_of_another_type_is_stored_and_ignored(deliver):
    body = event("charge.refunded", {"id": "ch_1", "object": "charge"}, event_id="evt_other")

    response = deliver(body)

    assert response.json()["repeat"] is False
    stored = StripeEvent.objects.get()
    assert (stored.outcome, stored.object_id) == (StripeEventOutcome.IGNORED, "ch_1")
    assert stored.processed_at is not None


def test_an_event_for_another_organizations_invoice_touches_only_that_one(deliver, october):
    other = make_org(owner=UserFactory(), name="Globex")
    set_customer(other, "cus_globex", PaymentStatus.OK)
    theirs = open_invoice(other, stripe_id="in_globex_october")

    failed = stripe_invoice("in_globex_october", "open", customer="cus_globex")
    deliver(event("invoice.payment_failed", failed, event_id="evt_globex", created=FAILED))

    assert reload(theirs).payment_failed_at == FAILED
    assert account(other).payment_status == PaymentStatus.PAST_DUE
    ours = reload(october)
    assert (ours.state, ours.payment_failed_at) == (InvoiceState.OPEN, None)
    assert account(october.organization).payment_status == PaymentStatus.OK
    assert StripeEvent.objects.get().organization == other
    assert not AuditEvent.unscoped_all_tenants.filter(organization=october.organization).filter(
        action__startswith="invoice."
    )


# A failed payment --------------------------------------------------------------------------


def test_a_failed_payment_shows_until_the_invoice_is_paid(deliver, october):
    org = october.organization
    billing = session_client(add_member(org, Role.BILLING).user)
    failed = stripe_invoice("in_october", "open")

    deliver(event("invoice.payment_failed", failed, event_id="evt_failed", created=FAILED))

    assert reload(october).payment_failed_at == FAILED
    assert account(org).payment_status == PaymentStatus.PAST_DUE
    api = billing.get(f"/api/v1/orgs/{org.public_id}/billing-account/").json()
    assert api["payment_status"] == "past_due"
    listed = billing.get(f"/api/v1/orgs/{org.public_id}/invoices/").json()["results"]
    assert listed[0]["payment_failed_at"] == "2026-11-02T08:15:00Z"
    page = billing.get(f"/orgs/{org.public_id}/billing/").content.decode()
    invoice_page = f"/orgs/{org.public_id}/billing/invoices/{october.public_id}/"
    assert (
        f'The payment of invoice <a href="{invoice_page}"><code>{october.public_id}</code></a>'
        " (October 2026, $0.00) failed on 2 November 2026 (UTC); update your payment method in"
        " Stripe." in page
    )

    paid = stripe_invoice("in_october", "paid", paid_at=PAID)
    deliver(event("invoice.paid", paid, event_id="evt_paid"))

    assert account(org).payment_status == PaymentStatus.OK
    assert (
        "The payment of invoice"
        not in billing.get(f"/orgs/{org.public_id}/billing/").content.decode()
    )
    changes = AuditEvent.unscoped_all_tenants.filter(action="billing_account.payment_status")
    assert [(c.before, c.after) for c in changes.order_by("id")] == [
        ({"payment_status": "ok"}, {"payment_status": "past_due"}),
        ({"payment_status": "past_due"}, {"payment_status": "ok"}),
    ]


def test_past_due_stays_while_another_invoice_is_unpaid_after_a_failure(deliver, october):
    org = october.organization
    november = open_invoice(org, stripe_id="in_november", month=11)
    for stripe_id, event_id in (("in_october", "evt_f1"), ("in_november", "evt_f2")):
        failed = stripe_invoice(stripe_id, "open")
        deliver(event("invoice.payment_failed", failed, event_id=event_id, created=FAILED))

    deliver(event("invoice.paid", stripe_invoice("in_october", "paid"), event_id="evt_p1"))

    assert account(org).payment_status == PaymentStatus.PAST_DUE
    deliver(event("invoice.voided", stripe_invoice("in_november", "void"), event_id="evt_v2"))
    assert reload(november).state == InvoiceState.VOID
    assert account(org).payment_status == PaymentStatus.OK


def test_a_failure_delivered_after_the_payment_does_not_make_the_account_past_due(deliver, october):
    deliver(event("invoice.paid", stripe_invoice("in_october", "paid"), event_id="evt_paid"))
    # A stale snapshot ("open"), but the state only moves forward: the invoice is paid.
    failed = stripe_invoice("in_october", "open")
    deliver(event("invoice.payment_failed", failed, event_id="evt_late", created=FAILED))

    assert reload(october).state == InvoiceState.PAID
    assert account(october.organization).payment_status == PaymentStatus.OK


# customer.updated ---------------------------------------------------------------------------


def test_customer_updated_sets_the_payment_status(deliver, org):
    set_customer(org, "cus_acme")
    with_card = stripe_customer("cus_acme", payment_method="pm_card_visa")
    without = stripe_customer("cus_acme", payment_method=None)

    deliver(event("customer.updated", with_card, event_id="evt_c1"))
    assert account(org).payment_status == PaymentStatus.OK
    deliver(event("customer.updated", without, event_id="evt_c2"))
    assert account(org).payment_status == PaymentStatus.NONE

    open_invoice(org, stripe_id="in_october")
    failed = stripe_invoice("in_october", "open")
    deliver(event("invoice.payment_failed", failed, event_id="evt_f", created=FAILED))
    deliver(event("customer.updated", with_card, event_id="evt_c3"))
    # A new card does not pay the invoice: past due until Stripe says it is paid.
    assert account(org).payment_status == PaymentStatus.PAST_DUE


def test_customer_updated_for_an_unknown_customer_alerts(deliver, org):
    deliver(
        event("customer.updated", stripe_customer("cus_x", payment_method="pm_1"), event_id="evt_c")
    )

    assert StripeEvent.objects.get().outcome == StripeEventOutcome.UNKNOWN_OBJECT
    assert BillingAlert.objects.get().subject == "cus_x"


# Read again from Stripe ---------------------------------------------------------------------


@pytest.fixture
def in_stripe(org, stripe_standin, settings):
    """Stripe configured (the stand-in): October's invoice pushed and finalized there."""
    settings.STRIPE_API_KEY = STANDIN_KEY
    settings.STRIPE_API_BASE = stripe_standin.url
    gateway = StripeGateway(api_key=STANDIN_KEY, api_base=stripe_standin.url, timeout_seconds=5)
    customer = gateway.create_customer(organization=org.public_id)
    set_customer(org, customer, PaymentStatus.OK)
    invoice = open_invoice(org, stripe_id="")
    pushed = gateway.create_invoice(customer=customer, sluice_invoice_id=invoice.public_id)
    gateway.create_invoice_item(
        customer=customer,
        invoice=pushed.id,
        sluice_line_id="invl_x",
        amount_cents=38_500,
        description="October",
    )
    gateway.finalize_invoice(pushed.id)
    Invoice.unscoped_all_tenants.filter(pk=invoice.pk).update(stripe_invoice_id=pushed.id)
    return reload(invoice), customer


def test_the_task_acts_on_what_stripe_says_now_not_on_the_snapshot(
    deliver, in_stripe, stripe_standin
):
    invoice, customer = in_stripe
    stripe_standin.invoice_status_set(invoice.stripe_invoice_id, "paid")
    paid_at = stripe_standin.invoices[invoice.stripe_invoice_id]["status_transitions"]["paid_at"]
    # The finalization's own snapshot says "open"; Stripe, asked now, says "paid".
    snapshot = stripe_invoice(invoice.stripe_invoice_id, "open", customer=customer)

    deliver(event("invoice.finalized", snapshot, event_id="evt_fin"))

    after = reload(invoice)
    assert (after.state, after.paid_at) == (InvoiceState.PAID, datetime.fromtimestamp(paid_at, UTC))
    asked = [r.path for r in stripe_standin.requests if r.method == "GET"]
    assert asked == [f"/v1/invoices/{invoice.stripe_invoice_id}"]

    deliver(event("invoice.paid", snapshot | {"status": "paid"}, event_id="evt_paid"))
    assert StripeEvent.objects.get(event_id="evt_paid").outcome == StripeEventOutcome.UNCHANGED


def test_customer_updated_reads_the_customer_again(deliver, in_stripe, stripe_standin, org):
    _, customer = in_stripe
    stripe_standin.customer_payment_method_set(customer, None)
    # The event's snapshot still shows the card that has since been removed.
    snapshot = stripe_customer(customer, payment_method="pm_card_visa")

    deliver(event("customer.updated", snapshot, event_id="evt_cust"))

    assert account(org).payment_status == PaymentStatus.NONE


def test_a_stripe_that_cannot_answer_leaves_the_event_pending_for_the_beat_job(
    deliver, in_stripe, stripe_standin, stripe_fault_proxy, settings
):
    invoice, customer = in_stripe
    settings.STRIPE_API_BASE = stripe_fault_proxy.url
    stripe_fault_proxy.plan(Fault.SERVER_ERROR, method="GET")
    stripe_standin.invoice_status_set(invoice.stripe_invoice_id, "paid")
    snapshot = stripe_invoice(invoice.stripe_invoice_id, "paid", customer=customer)

    deliver(event("invoice.paid", snapshot, event_id="evt_later"))

    pending = StripeEvent.objects.get()
    assert (pending.outcome, pending.processed_at) == (StripeEventOutcome.PENDING, None)
    assert "Stripe could not be asked" in pending.detail
    assert reload(invoice).state == InvoiceState.OPEN

    assert stripe_events.stripe_events_retry_pending() == 0  # too recent: its task may run
    StripeEvent.objects.update(received_at=timezone.now() - timedelta(minutes=3))
    assert stripe_events.stripe_events_retry_pending() == 1

    assert StripeEvent.objects.get().outcome == StripeEventOutcome.APPLIED
    assert reload(invoice).state == InvoiceState.PAID


def test_an_event_pending_for_an_hour_alerts(in_stripe, stripe_fault_proxy, settings, deliver):
    invoice, _ = in_stripe
    settings.STRIPE_API_BASE = stripe_fault_proxy.url
    stripe_fault_proxy.plan(Fault.SERVER_ERROR, Fault.SERVER_ERROR, method="GET")
    deliver(
        event("invoice.paid", stripe_invoice(invoice.stripe_invoice_id, "paid"), event_id="evt_x")
    )
    StripeEvent.objects.update(received_at=timezone.now() - timedelta(hours=2))

    assert stripe_events.stripe_events_retry_pending() == 0

    alert = BillingAlert.objects.get()
    assert alert.kind == AlertKind.STRIPE_WEBHOOK
    assert "still pending" in alert.message


def test_operators_see_the_events_read_only(deliver, october):
    deliver(event("invoice.paid", stripe_invoice("in_october", "paid"), event_id="evt_admin"))
    operator = Client()
    operator.force_login(UserFactory(is_staff=True, is_superuser=True))
    stored = StripeEvent.objects.get()

    listed = operator.get("/admin/billing/stripeevent/", {"q": "evt_admin"})

    assert listed.status_code == 200
    assert "evt_admin" in listed.content.decode()
    assert operator.get("/admin/billing/stripeevent/add/").status_code == 403
    change = operator.post(f"/admin/billing/stripeevent/{stored.pk}/change/", {"outcome": "failed"})
    assert change.status_code == 403
    delete = operator.post(f"/admin/billing/stripeevent/{stored.pk}/delete/", {"post": "yes"})
    assert delete.status_code == 403
    assert StripeEvent.objects.get().outcome == StripeEventOutcome.APPLIED


# The forward path --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "target", "path"),
    [
        ("draft", "paid", ["open", "paid"]),
        ("open", "paid", ["paid"]),
        ("open", "open", []),
        ("paid", "open", []),
        ("void", "paid", []),
        ("uncollectible", "paid", ["paid"]),
        ("paid", "void", []),
    ],
)
def test_the_forward_path(start, target, path):
    assert stripe_events._forward_path(start, target) == path


# A real worker ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_applies_the_event(client, celery_worker):
    org = make_org(owner=UserFactory(), name="Acme")
    set_customer(org, "cus_acme", PaymentStatus.OK)
    invoice = open_invoice(org, stripe_id="in_october")
    body = event(
        "invoice.paid", stripe_invoice("in_october", "paid", paid_at=PAID), event_id="evt_w"
    )

    response = post(client, body, signature(body))

    assert response.status_code == 200
    deadline = time.monotonic() + 30
    while StripeEvent.objects.get().processed_at is None:
        assert time.monotonic() < deadline, celery_worker.log()
        time.sleep(0.2)
    assert StripeEvent.objects.get().outcome == StripeEventOutcome.APPLIED
    assert reload(invoice).state == InvoiceState.PAID
