"""The stateful Stripe stand-in and its fault proxy (tests/support/stripe_standin.py), which the
exactly-once tests rely on: they are test support, so they are tested here, through
billing.stripe_gateway (which thereby talks to a Stripe that keeps state). Real Stripe cannot be
reached from the tests; stripe-mock keeps no state, hence the stand-in."""

import time

import pytest
import stripe

from billing.stripe_gateway import PermanentStripeError, RetryableStripeError, StripeGateway
from tests.support.stripe_standin import API_KEY, IDEMPOTENCY_WINDOW_SECONDS, Fault


@pytest.fixture
def gateway(stripe_standin):
    return StripeGateway(api_key=API_KEY, api_base=stripe_standin.url, timeout_seconds=5)


@pytest.fixture
def proxied(stripe_fault_proxy):
    """The gateway talking to the stand-in through the fault proxy."""
    return StripeGateway(api_key=API_KEY, api_base=stripe_fault_proxy.url, timeout_seconds=0.5)


@pytest.fixture
def draft(gateway):
    customer = gateway.create_customer(organization="org_standin", email="billing@acme.test")
    invoice = gateway.create_invoice(customer=customer, sluice_invoice_id="inv_1")
    return customer, invoice.id


def add_line(gateway, draft, line, amount_cents):
    customer, invoice = draft
    return gateway.create_invoice_item(
        customer=customer,
        invoice=invoice,
        sluice_line_id=line,
        amount_cents=amount_cents,
        description=f"line {line}",
    )


def test_an_invoice_is_pushed_and_totals_to_the_cent(gateway, stripe_standin, draft):
    customer, invoice = draft
    add_line(gateway, draft, "line_1", 55_800)
    add_line(gateway, draft, "line_2", 1_234)
    add_line(gateway, draft, "line_3", -500)

    finalized = gateway.finalize_invoice(invoice)

    assert (finalized.status, finalized.total, finalized.amount_due) == ("open", 56_534, 56_534)
    assert stripe_standin.invoices[invoice]["auto_advance"] is True
    assert gateway.retrieve_invoice(invoice) == finalized
    assert gateway.find_invoice(customer=customer, sluice_invoice_id="inv_1") == finalized
    found = gateway.find_invoice_item(invoice=invoice, sluice_line_id="line_2")
    assert (found.amount, found.sluice_line_id, found.invoice) == (1_234, "line_2", invoice)
    assert gateway.find_invoice_item(invoice=invoice, sluice_line_id="line_9") is None


def test_the_draft_waits_for_sluice_and_takes_only_its_items(stripe_standin, draft):
    invoice = stripe_standin.invoices[draft[1]]
    assert invoice["auto_advance"] is False
    assert invoice["status"] == "draft"
    assert invoice["metadata"] == {"sluice_invoice_id": "inv_1"}


def test_finalized_invoices_take_no_more_items(gateway, draft):
    gateway.finalize_invoice(draft[1])
    with pytest.raises(PermanentStripeError, match="draft invoices") as refused:
        add_line(gateway, draft, "line_late", 100)
    assert refused.value.status == 400


def test_an_invoice_with_nothing_to_pay_is_paid_when_finalized(gateway, draft):
    add_line(gateway, draft, "line_credit", -300)
    assert gateway.finalize_invoice(draft[1]).status == "paid"


def test_a_replay_returns_the_same_object(gateway, stripe_standin, draft):
    first = add_line(gateway, draft, "line_1", 700)
    again = add_line(gateway, draft, "line_1", 700)

    assert again == first
    assert len(stripe_standin.invoice_items) == 1
    assert [r.replayed for r in stripe_standin.requests if r.path == "/v1/invoiceitems"] == [
        False,
        True,
    ]


def test_a_key_reused_with_other_parameters_is_refused(gateway, stripe_standin, draft):
    add_line(gateway, draft, "line_1", 700)
    with pytest.raises(PermanentStripeError, match="same parameters") as refused:
        add_line(gateway, draft, "line_1", 701)
    assert refused.value.status == 400
    assert [item["amount"] for item in stripe_standin.invoice_items.values()] == [700]


def test_keys_are_forgotten_after_24_hours_so_lookups_come_first(gateway, stripe_standin, draft):
    first = add_line(gateway, draft, "line_1", 700)
    stripe_standin.advance(IDEMPOTENCY_WINDOW_SECONDS - 60)
    assert add_line(gateway, draft, "line_1", 700) == first
    stripe_standin.advance(120)

    # What a retry after the window must do first: the item is found by its Sluice id.
    assert gateway.find_invoice_item(invoice=draft[1], sluice_line_id="line_1") == first
    # Creating again would make a second one, as Stripe would.
    assert add_line(gateway, draft, "line_1", 700).id != first.id
    assert len(stripe_standin.invoice_items) == 2


def test_a_lost_response_created_the_object_once(
    proxied, stripe_standin, stripe_fault_proxy, gateway, draft
):
    stripe_fault_proxy.plan(Fault.RESPONSE_LOST, method="POST", path_prefix="/v1/invoiceitems")
    with pytest.raises(RetryableStripeError):
        add_line(proxied, draft, "line_1", 900)
    assert len(stripe_standin.invoice_items) == 1  # it landed; the client cannot know

    retried = add_line(proxied, draft, "line_1", 900)

    assert list(stripe_standin.invoice_items) == [retried.id]
    assert stripe_standin.requests[-1].replayed


@pytest.mark.parametrize("fault", [Fault.SERVER_ERROR, Fault.RATE_LIMITED, Fault.TIMEOUT])
def test_faults_before_stripe_create_nothing(
    proxied, stripe_standin, stripe_fault_proxy, draft, fault
):
    stripe_fault_proxy.hold_seconds = 2
    stripe_fault_proxy.plan(fault, method="POST", path_prefix="/v1/invoiceitems")
    with pytest.raises(RetryableStripeError) as failed:
        add_line(proxied, draft, "line_1", 900)
    assert stripe_standin.invoice_items == {}
    if fault is Fault.RATE_LIMITED:
        assert failed.value.retry_after == 1.0

    add_line(proxied, draft, "line_1", 900)
    assert len(stripe_standin.invoice_items) == 1


def test_the_plan_applies_in_order_to_matching_requests_only(
    proxied, stripe_fault_proxy, stripe_standin, draft
):
    stripe_fault_proxy.plan(None, Fault.SERVER_ERROR, method="POST", path_prefix="/v1/invoiceitems")
    proxied.retrieve_invoice(draft[1])  # not matched: passes
    add_line(proxied, draft, "line_1", 100)  # the first planned: passes
    with pytest.raises(RetryableStripeError):
        add_line(proxied, draft, "line_2", 100)
    add_line(proxied, draft, "line_2", 100)  # the plan is used up
    assert [entry.fault for entry in stripe_fault_proxy.log] == [
        None,
        None,
        Fault.SERVER_ERROR,
        None,
    ]


def test_the_stand_in_refuses_what_stripe_refuses(gateway, stripe_standin, draft):
    client = stripe.StripeClient(
        API_KEY, base_addresses={"api": stripe_standin.url}, max_network_retries=0
    )
    with pytest.raises(stripe.InvalidRequestError, match="unknown parameter: amount_in_cents"):
        client.v1.invoice_items.create(params={"customer": draft[0], "amount_in_cents": 1})
    with pytest.raises(PermanentStripeError, match="No such customer") as refused:
        gateway.create_invoice(customer="cus_missing", sluice_invoice_id="inv_2")
    assert refused.value.status == 400
    with pytest.raises(PermanentStripeError, match="No such invoice") as missing:
        gateway.retrieve_invoice("in_missing")
    assert missing.value.status == 404


def test_a_held_response_comes_late_and_stripe_acted_before_it(
    stripe_standin, stripe_fault_proxy, draft
):
    # What the killed-worker test relies on: while the response is held, the object exists.
    stripe_fault_proxy.hold_seconds = 1
    stripe_fault_proxy.plan(Fault.RESPONSE_HELD, method="POST", path_prefix="/v1/invoiceitems")
    patient = StripeGateway(api_key=API_KEY, api_base=stripe_fault_proxy.url, timeout_seconds=5)
    started = time.monotonic()

    item = add_line(patient, draft, "line_1", 900)

    assert time.monotonic() - started >= 1
    assert list(stripe_standin.invoice_items) == [item.id]
