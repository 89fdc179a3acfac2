"""The Stripe outbox against the stateful Stripe stand-in: a closed invoice pushed whole (the
customer, the invoice, one item per line, finalized), what the worker does when Stripe fails
or refuses, the operators' retry, and claiming: due rows only, one worker per row, a lease that
runs out, a worker that lost its claim writing nothing. The fault matrix is in
test_outbox_faults.py, real workers killed mid-push in test_outbox_worker.py."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from billing import outbox
from billing.invoices import invoice_record
from billing.models import (
    AlertKind,
    BillingAccount,
    BillingAlert,
    InvoiceLine,
    InvoiceState,
    StripeOutbox,
)
from billing.stripe_gateway import StripeGateway
from billing.stripe_push import item_description
from tenants.audit import Actor
from tenants.models import AuditEvent
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, make_org
from tests.support.stripe_standin import API_KEY, Fault, FaultProxy

from .outbox_support import (
    OCT_1,
    TOTAL_CENTS,
    assert_pushed_exactly_once,
    closed_invoice,
    line,
    push_until_settled,
    row_of,
    stripe_at,
    time_passes,
)

OPERATOR = Actor(system="tests-operator")
SEP_1 = datetime(2026, 9, 1, tzinfo=UTC)


@pytest.fixture
def organization(db):
    return make_org(owner=UserFactory(), name="Acme")


@pytest.fixture
def invoice(organization):
    return closed_invoice(organization)


def audit_actions(invoice):
    return list(
        AuditEvent.unscoped_all_tenants.filter(target_id=invoice.public_id)
        .order_by("created_at", "id")
        .values_list("action", flat=True)
    )


@pytest.mark.django_db
def test_a_closed_invoice_is_pushed_whole_and_recorded_once(invoice, stripe_standin):
    with stripe_at(stripe_standin.url):
        assert outbox.outbox_push_due() == 1
        assert outbox.outbox_push_due() == 0  # nothing left to do

    stripe_invoice = assert_pushed_exactly_once(stripe_standin, invoice)
    row = row_of(invoice)
    assert (row.state, row.attempts, row.claim_token, row.claimed_until) == ("done", 0, "", None)
    assert row.done_at is not None
    customer = stripe_standin.customers[stripe_invoice["customer"]]
    assert (customer["name"], customer["email"]) == ("Acme Ltd", "billing@acme.test")
    assert customer["metadata"] == {"sluice_organization": invoice.organization.public_id}
    account = BillingAccount.unscoped_all_tenants.get(organization=invoice.organization)
    assert account.stripe_customer_id == customer["id"]
    assert stripe_invoice["auto_advance"] is True  # handed to Stripe to collect
    # No payment method on file: sent to the billing e-mail to pay, not charged.
    assert (stripe_invoice["collection_method"], stripe_invoice["days_until_due"]) == (
        "send_invoice",
        30,
    )
    assert stripe_invoice["description"] == "Sluice, October 2026"
    assert sorted(i["amount"] for i in stripe_standin.items_of(stripe_invoice["id"])) == [
        -49,
        0,  # a line of 0 cents has its item too, so every line is on Stripe's invoice
        335,
        55_800,
    ]
    assert audit_actions(invoice) == ["invoice.pushed_to_stripe"]
    event = AuditEvent.unscoped_all_tenants.get(action="invoice.pushed_to_stripe")
    assert event.actor_label == "system:stripe-outbox"
    assert event.after == {
        "stripe_invoice_id": stripe_invoice["id"],
        "stripe_status": "open",
        "stripe_total_cents": TOTAL_CENTS,
    }


@pytest.mark.django_db
def test_an_account_with_a_payment_method_is_charged(invoice, stripe_standin):
    BillingAccount.unscoped_all_tenants.filter(organization=invoice.organization).update(
        payment_status="ok"
    )
    with stripe_at(stripe_standin.url):
        assert outbox.outbox_push_due() == 1
    stripe_invoice = assert_pushed_exactly_once(stripe_standin, invoice)
    assert stripe_invoice["collection_method"] == "charge_automatically"


@pytest.mark.django_db
def test_item_descriptions_say_what_was_billed(invoice):
    lines = InvoiceLine.unscoped_all_tenants.filter(invoice=invoice).order_by("position")
    assert [item_description(line) for line in lines] == [
        "orders (kc_orders): Cluster hours, 744 cluster-hours,"
        " 2026-10-01 00:00 to 2026-11-01 00:00 UTC",
        "orders (kc_orders): Partition hours, 2,232 partition-hours,"
        " 2026-10-01 00:00 to 2026-11-01 00:00 UTC",
        "orders (kc_orders): Ingress (written), 1 B, 2026-10-01 00:00 to 2026-11-01 00:00 UTC",
        "Adjustment: orders (kc_orders): Storage, -3.6 TB-hours,"
        " 2026-09-30 23:00 to 2026-10-01 00:00 UTC",
    ]


@pytest.mark.django_db
def test_an_organization_with_a_customer_keeps_it(organization, stripe_standin):
    gateway = StripeGateway(api_key=API_KEY, api_base=stripe_standin.url, timeout_seconds=5)
    existing = gateway.create_customer(organization="org_earlier")
    invoice = closed_invoice(organization)
    BillingAccount.unscoped_all_tenants.filter(organization=organization).update(
        stripe_customer_id=existing
    )

    with stripe_at(stripe_standin.url):
        outbox.outbox_push_due()

    assert list(stripe_standin.customers) == [existing]
    assert stripe_standin.invoices[row_of(invoice).invoice.stripe_invoice_id]["customer"] == (
        existing
    )


@pytest.mark.django_db
@override_settings(STRIPE_API_KEY="")
def test_without_a_stripe_key_nothing_is_claimed_or_changed(invoice):
    before = StripeOutbox.unscoped_all_tenants.values().get(invoice=invoice)

    assert outbox.outbox_push_due() == 0

    assert StripeOutbox.unscoped_all_tenants.values().get(invoice=invoice) == before


@pytest.mark.django_db
def test_stripe_failing_backs_off_and_honours_retry_after(invoice, stripe_standin):
    with FaultProxy(stripe_standin.url, retry_after=300) as proxy, stripe_at(proxy.url):
        proxy.plan(Fault.SERVER_ERROR, Fault.SERVER_ERROR, Fault.RATE_LIMITED)
        started = timezone.now()
        outbox.outbox_push_due()
        first = row_of(invoice)
        time_passes()
        outbox.outbox_push_due()
        second = row_of(invoice)
        time_passes()
        outbox.outbox_push_due()
        third = row_of(invoice)

        assert (first.state, first.attempts, first.claim_token) == ("pending", 1, "")
        assert "Stripe 500" in first.last_error
        # 30 s after the first failure, 1 min after the second; Stripe's Retry-After (300 s)
        # outweighs the third's 2 min.
        assert timedelta(seconds=30) <= first.next_attempt_at - started < timedelta(seconds=35)
        assert timedelta(seconds=60) <= second.next_attempt_at - started < timedelta(seconds=65)
        assert (third.attempts, "Stripe 429" in third.last_error) == (3, True)
        assert timedelta(seconds=300) <= third.next_attempt_at - started < timedelta(seconds=305)
        assert outbox.outbox_push_due() == 0  # not due yet

        time_passes()
        assert outbox.outbox_push_due() == 1
    assert row_of(invoice).last_error == ""
    assert_pushed_exactly_once(stripe_standin, invoice)


def test_backoff_doubles_up_to_an_hour():
    assert [outbox.backoff(n).total_seconds() for n in (1, 2, 3, 7, 8, 50)] == [
        30,
        60,
        120,
        1_920,
        3_600,
        3_600,
    ]


@pytest.mark.django_db
def test_a_refusal_stops_and_alerts_until_an_operator_retries(invoice, stripe_standin):
    # A revoked key: Stripe answers 401 to everything. Retrying would not help; an operator
    # must look, fix the key, then retry.
    with override_settings(STRIPE_API_KEY="sk_live_revoked", STRIPE_API_BASE=stripe_standin.url):
        assert outbox.outbox_push_due() == 0

    row = row_of(invoice)
    assert (row.state, row.attempts) == ("failed", 0)
    assert "Stripe 401" in row.last_error
    alert = BillingAlert.objects.get(kind=AlertKind.STRIPE_REFUSED, subject=invoice.public_id)
    assert alert.resolved_at is None
    assert alert.organization == invoice.organization
    with stripe_at(stripe_standin.url):
        assert outbox.outbox_push_due() == 0  # a failed row waits for an operator

    assert outbox.outbox_retry(outbox=row, actor=OPERATOR)
    alert.refresh_from_db()
    assert alert.resolved_at is not None
    with stripe_at(stripe_standin.url):
        assert outbox.outbox_push_due() == 1

    assert_pushed_exactly_once(stripe_standin, invoice)
    assert audit_actions(invoice) == ["invoice.stripe_push_retried", "invoice.pushed_to_stripe"]
    assert not outbox.outbox_retry(outbox=row, actor=OPERATOR)  # done: nothing to retry


@pytest.mark.django_db
def test_a_stripe_total_that_is_not_sluices_is_not_finalized(invoice, stripe_standin):
    with FaultProxy(stripe_standin.url) as proxy, stripe_at(proxy.url):
        # The push stops before finalizing; meanwhile someone adds an item to the draft.
        proxy.plan(Fault.SERVER_ERROR, method="GET", path_prefix="/v1/invoices/")
        outbox.outbox_push_due()
        row = row_of(invoice)
        draft = row.invoice.stripe_invoice_id
        gateway = StripeGateway(api_key=API_KEY, api_base=stripe_standin.url, timeout_seconds=5)
        gateway.create_invoice_item(
            customer=stripe_standin.invoices[draft]["customer"],
            invoice=draft,
            sluice_line_id="invl_by_hand",
            amount_cents=1_000,
            description="added by hand",
        )
        time_passes()
        assert push_until_settled(invoice).state == "failed"

    assert stripe_standin.invoices[draft]["status"] == "draft"
    assert "totals 57086 cents, Sluice's" in row_of(invoice).last_error
    assert BillingAlert.objects.filter(subject=invoice.public_id, resolved_at=None).exists()


def push_in_thread(barrier: threading.Barrier) -> None:
    try:
        barrier.wait(timeout=10)
        outbox.outbox_push_due(limit=1)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_two_invoices_of_one_organization_pushed_at_once_share_one_customer(stripe_standin):
    organization = make_org(owner=UserFactory(), name="Acme")
    october = closed_invoice(organization)
    # September: 720 cluster-hours at 750,000 micros = 540,000,000 micros = 54,000 cents.
    september_line = line(
        "cluster_hours", 720, 750_000, 1, 540_000_000, 54_000, 0, start=SEP_1, end=OCT_1
    )
    with transaction.atomic(), tenant_scope(organization):
        september = invoice_record(
            organization=organization,
            year=2026,
            month=9,
            lines=[september_line],
            state=InvoiceState.OPEN,
        )
        outbox.outbox_add(invoice=september)
    barrier = threading.Barrier(2)
    workers = [threading.Thread(target=push_in_thread, args=(barrier,)) for _ in range(2)]
    with stripe_at(stripe_standin.url):  # settings are the process's: set once, not per thread
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=30)

    assert [row_of(invoice).state for invoice in (october, september)] == ["done", "done"]
    (customer,) = stripe_standin.customers
    assert {i["customer"] for i in stripe_standin.invoices.values()} == {customer}
    assert sorted(i["total"] for i in stripe_standin.invoices.values()) == [54_000, TOTAL_CENTS]


# Claiming -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_only_due_rows_without_a_live_lease_are_claimed(invoice):
    row = row_of(invoice)
    later = timezone.now() + timedelta(minutes=5)
    StripeOutbox.unscoped_all_tenants.filter(pk=row.pk).update(next_attempt_at=later)
    assert outbox.outbox_claim() is None

    StripeOutbox.unscoped_all_tenants.filter(pk=row.pk).update(next_attempt_at=timezone.now())
    claim = outbox.outbox_claim()
    assert claim.outbox_pk == row.pk
    assert outbox.outbox_claim() is None  # its lease is live

    StripeOutbox.unscoped_all_tenants.filter(pk=row.pk).update(
        claimed_until=timezone.now() - timedelta(seconds=1)
    )
    again = outbox.outbox_claim()  # the holder died: its lease ran out
    assert again.outbox_pk == row.pk
    assert again.token != claim.token

    for state in ("done", "failed"):
        StripeOutbox.unscoped_all_tenants.filter(pk=row.pk).update(state=state, claimed_until=None)
        assert outbox.outbox_claim() is None


@pytest.mark.django_db
def test_a_worker_that_lost_its_claim_writes_nothing(invoice, stripe_standin):
    stale = outbox.outbox_claim()
    StripeOutbox.unscoped_all_tenants.filter(pk=stale.outbox_pk).update(
        claimed_until=timezone.now() - timedelta(seconds=1)
    )
    holder = outbox.outbox_claim()
    gateway = StripeGateway(api_key=API_KEY, api_base=stripe_standin.url, timeout_seconds=5)

    assert outbox.outbox_push(stale, gateway=gateway) == "pending"

    # It reached Stripe (the customer), and saved nothing: the holder's row is untouched.
    account = BillingAccount.unscoped_all_tenants.get(organization=invoice.organization)
    assert len(stripe_standin.customers) == 1
    assert account.stripe_customer_id == ""
    row = row_of(invoice)
    assert (row.state, row.attempts, row.claim_token) == ("pending", 0, holder.token)

    assert outbox.outbox_push(holder, gateway=gateway) == "done"
    assert_pushed_exactly_once(stripe_standin, invoice)  # the same customer, by its key
    assert audit_actions(invoice) == ["invoice.pushed_to_stripe"]


def claim_in_thread(claims: list, barrier: threading.Barrier) -> None:
    try:
        barrier.wait(timeout=10)
        while (claim := outbox.outbox_claim()) is not None:
            claims.append(claim.outbox_pk)
    finally:
        connection.close()  # this thread's own connection


@pytest.mark.django_db(transaction=True)
def test_concurrent_claimers_never_claim_one_row_twice():
    # Eight workers at once on PostgreSQL, each on its own connection, claiming until nothing
    # is due: every row is claimed exactly once.
    rows = [row_of(closed_invoice(make_org(name=f"Org {n}"))) for n in range(12)]
    claims: list[int] = []
    barrier = threading.Barrier(8)
    threads = [threading.Thread(target=claim_in_thread, args=(claims, barrier)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(claims) == sorted(row.pk for row in rows)


@pytest.mark.django_db(transaction=True)
def test_a_row_being_claimed_is_skipped_not_waited_for():
    first, second = (row_of(closed_invoice(make_org(name=f"Org {n}"))) for n in range(2))
    claimed = []
    with transaction.atomic():
        # Another worker is between its SELECT … FOR UPDATE and its commit on the first row.
        StripeOutbox.unscoped_all_tenants.select_for_update().get(pk=first.pk)
        thread = threading.Thread(target=lambda: claimed.append(claim_and_close()))
        thread.start()
        thread.join(timeout=10)
        assert not thread.is_alive()  # not blocked by the lock
    assert claimed == [second.pk]


def claim_and_close():
    try:
        return outbox.outbox_claim().outbox_pk
    finally:
        connection.close()
