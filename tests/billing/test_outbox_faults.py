"""Exactly once, whatever the network does: each fault of the proxy (500, 429 with Retry-After,
a timeout, and the worst — the request reached Stripe and its answer was lost) on each kind of
step of a push, then the worker runs until the row is done. Every line is on Stripe's invoice
exactly once, its total is Sluice's to the cent, and it was finalized by one request. And
after Stripe forgot the keys (24 h), a retry finds by Sluice's ids what an earlier attempt
made instead of making it twice."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing import outbox
from billing.models import InvoiceLine, StripeOutbox
from tests.factories import UserFactory, make_org
from tests.support.stripe_standin import Fault

from .outbox_support import (
    STEPS,
    assert_pushed_exactly_once,
    closed_invoice,
    plan,
    push_until_settled,
    row_of,
    stripe_at,
    time_passes,
)


@pytest.fixture
def invoice(db):
    return closed_invoice(make_org(owner=UserFactory(), name="Acme"))


@pytest.mark.django_db
@pytest.mark.parametrize("step", list(STEPS))
@pytest.mark.parametrize(
    "fault", [Fault.SERVER_ERROR, Fault.RATE_LIMITED, Fault.TIMEOUT, Fault.RESPONSE_LOST]
)
def test_a_fault_on_any_step_still_pushes_exactly_once(
    invoice, stripe_standin, stripe_fault_proxy, step, fault
):
    stripe_fault_proxy.hold_seconds = 1  # past the gateway's 0.5 s timeout
    plan(stripe_fault_proxy, step, fault)

    with stripe_at(stripe_fault_proxy.url):
        row = push_until_settled(invoice)

    assert [entry.fault for entry in stripe_fault_proxy.log if entry.fault] == [fault]
    assert (row.state, row.attempts) == ("done", 1)
    assert_pushed_exactly_once(stripe_standin, invoice)


def day_passes(standin, invoice) -> None:
    """25 hours on both sides: Stripe forgot the keys, and the row is that old."""
    standin.advance(25 * 3600)
    StripeOutbox.unscoped_all_tenants.filter(invoice=invoice).update(
        created_at=timezone.now() - timedelta(hours=25)
    )


@pytest.mark.django_db
@pytest.mark.parametrize("step", ["invoice", "second item", "finalize"])
def test_after_stripe_forgot_the_keys_a_retry_finds_what_was_made(
    invoice, stripe_standin, stripe_fault_proxy, step
):
    # The step reaches Stripe and its answer is lost; the retry comes a day later.
    plan(stripe_fault_proxy, step, Fault.RESPONSE_LOST)
    with stripe_at(stripe_fault_proxy.url):
        outbox.outbox_push_due()
        assert row_of(invoice).state == "pending"
        made_before = dict(stripe_standin.invoice_items)
        day_passes(stripe_standin, invoice)
        time_passes()
        row = push_until_settled(invoice)

    assert row.state == "done"
    assert_pushed_exactly_once(stripe_standin, invoice)
    # What the first attempt made is what Sluice saved, not a second copy.
    saved = set(
        InvoiceLine.unscoped_all_tenants.filter(invoice=invoice).values_list(
            "stripe_invoice_item_id", flat=True
        )
    )
    assert set(made_before) <= saved
    lookups = [r.path for r in stripe_standin.requests if r.method == "GET"]
    if step == "invoice":
        assert any(path == "/v1/invoices" for path in lookups)  # found by sluice_invoice_id
    elif step == "second item":
        assert any(path == "/v1/invoiceitems" for path in lookups)  # found by sluice_line_id
