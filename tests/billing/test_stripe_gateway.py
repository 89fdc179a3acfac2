"""Contract tests: every call of billing.stripe_gateway sent once to stripe-mock, which checks
it against Stripe's API description for the API version the pinned library speaks (a wrong
parameter name or type is a 400 there, so a failing test). stripe-mock ignores Idempotency-Key,
so the requests go through the fault proxy, which records the headers the gateway sent; the
proxy also stands in for a failing network, which stripe-mock cannot be."""

import pytest
import stripe
from django.test import override_settings

from billing.stripe_gateway import (
    PermanentStripeError,
    RetryableStripeError,
    StripeGateway,
    StripeInvoice,
    StripeInvoiceItem,
    StripeNotConfigured,
    classify,
    idempotency_key,
)
from tests.support.stripe_mock import API_KEY
from tests.support.stripe_standin import Fault, FaultProxy


@pytest.fixture
def proxy(stripe_mock):
    with FaultProxy(stripe_mock.url, hold_seconds=3) as proxy:
        yield proxy


@pytest.fixture
def gateway(proxy):
    return StripeGateway(api_key=API_KEY, api_base=proxy.url, timeout_seconds=10)


def sent(proxy, method, path):
    """The one request the gateway sent to ``path``."""
    matching = [r for r in proxy.log if r.method == method and r.path.split("?")[0] == path]
    assert len(matching) == 1, proxy.log
    return matching[0]


def test_create_customer(gateway, proxy):
    customer = gateway.create_customer(
        organization="org_contract", name="Acme", email="billing@acme.test"
    )
    assert customer.startswith("cus_")
    request = sent(proxy, "POST", "/v1/customers")
    assert request.headers["Idempotency-Key"] == "sluice:customer:org_contract"
    assert request.headers["Stripe-Version"] == stripe._ApiVersion.CURRENT


def test_create_portal_session(gateway, proxy):
    url = gateway.create_portal_session(
        customer="cus_contract", return_url="https://sluice.test/orgs/org_contract/billing/"
    )
    assert url.startswith("https://")
    request = sent(proxy, "POST", "/v1/billing_portal/sessions")
    # Not one of Sluice's keys (the library's own, random): a fresh short-lived link each time.
    assert not request.headers["Idempotency-Key"].startswith("sluice:")


@pytest.mark.parametrize(
    ("collection_method", "days_until_due"),
    [("charge_automatically", None), ("send_invoice", 30)],
)
def test_create_invoice(gateway, proxy, collection_method, days_until_due):
    invoice = gateway.create_invoice(
        customer="cus_contract",
        sluice_invoice_id="inv_contract",
        collection_method=collection_method,
        days_until_due=days_until_due,
        description="Sluice, November 2026",
    )
    assert isinstance(invoice, StripeInvoice)
    assert invoice.id.startswith("in_")
    assert isinstance(invoice.total, int)
    request = sent(proxy, "POST", "/v1/invoices")
    assert request.headers["Idempotency-Key"] == "sluice:invoice:inv_contract"


@pytest.mark.parametrize("amount_cents", [1234, -500])
def test_create_invoice_item(gateway, proxy, amount_cents):
    item = gateway.create_invoice_item(
        customer="cus_contract",
        invoice="in_contract",
        sluice_line_id="line_contract",
        amount_cents=amount_cents,
        description="kc_1 (orders): 744 cluster-hours at $0.75",
    )
    assert isinstance(item, StripeInvoiceItem)
    assert item.id.startswith("ii_")
    request = sent(proxy, "POST", "/v1/invoiceitems")
    assert request.headers["Idempotency-Key"] == "sluice:invoice-item:line_contract"


def test_finalize_invoice(gateway, proxy):
    invoice = gateway.finalize_invoice("in_contract")
    assert invoice.id.startswith("in_")
    request = sent(proxy, "POST", "/v1/invoices/in_contract/finalize")
    assert request.headers["Idempotency-Key"] == "sluice:finalize:in_contract"


def test_retrieve_invoice(gateway, proxy):
    invoice = gateway.retrieve_invoice("in_contract")
    assert invoice.status in {"draft", "open", "paid", "uncollectible", "void"}
    assert "Idempotency-Key" not in sent(proxy, "GET", "/v1/invoices/in_contract").headers


def test_retrieve_customer(gateway, proxy):
    customer = gateway.retrieve_customer("cus_contract")
    assert customer.id.startswith("cus_")
    assert isinstance(customer.has_default_payment_method, bool)
    assert "Idempotency-Key" not in sent(proxy, "GET", "/v1/customers/cus_contract").headers


def test_find_invoice_item_lists_the_invoices_items(gateway, proxy):
    # stripe-mock's fixture items carry no Sluice metadata: nothing is found, and the request
    # was valid.
    assert gateway.find_invoice_item(invoice="in_contract", sluice_line_id="line_x") is None
    request = sent(proxy, "GET", "/v1/invoiceitems")
    assert "invoice=in_contract" in request.path


def test_find_invoice_lists_the_customers_invoices(gateway, proxy):
    assert gateway.find_invoice(customer="cus_contract", sluice_invoice_id="inv_x") is None
    assert "customer=cus_contract" in sent(proxy, "GET", "/v1/invoices").path


def client_of(stripe_mock, **options) -> stripe.StripeClient:
    return stripe.StripeClient(
        API_KEY, base_addresses={"api": stripe_mock.url}, max_network_retries=0, **options
    )


@pytest.mark.parametrize(
    "params",
    [
        {"customer": "cus_contract", "amount_in_cents": 100},  # a name Stripe does not have
        {"customer": "cus_contract", "amount": "12.34", "currency": "usd"},  # not an integer
    ],
)
def test_stripe_mock_refuses_what_stripe_would(stripe_mock, params):
    # What the contract tests rely on: a wrong request is a failure, not a fixture.
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client_of(stripe_mock).v1.invoice_items.create(params=params)
    assert refused.value.http_status == 400
    assert isinstance(classify(refused.value), PermanentStripeError)


def test_stripe_mock_refuses_another_api_version(stripe_mock):
    # It runs with -strict-version-check: upgrading the library alone fails the tests.
    client = client_of(stripe_mock, stripe_version="2020-08-27")
    with pytest.raises(stripe.InvalidRequestError, match="doesn't match version"):
        client.v1.customers.create(params={})


@pytest.mark.parametrize("fault", [Fault.SERVER_ERROR, Fault.TIMEOUT, Fault.RESPONSE_LOST])
def test_no_answer_and_server_errors_are_retryable(proxy, fault):
    gateway = StripeGateway(api_key=API_KEY, api_base=proxy.url, timeout_seconds=0.5)
    proxy.plan(fault)
    with pytest.raises(RetryableStripeError):
        gateway.create_customer(organization="org_contract")


def test_rate_limiting_is_retryable_after_what_stripe_says(gateway, proxy):
    proxy.retry_after = 7
    proxy.plan(Fault.RATE_LIMITED)
    with pytest.raises(RetryableStripeError) as limited:
        gateway.retrieve_invoice("in_contract")
    assert (limited.value.status, limited.value.retry_after) == (429, 7.0)


def test_a_refused_key_is_permanent(proxy):
    gateway = StripeGateway(api_key="sk_live_notatestkey", api_base=proxy.url, timeout_seconds=5)
    with pytest.raises(PermanentStripeError) as refused:
        gateway.retrieve_invoice("in_contract")
    assert refused.value.status == 401


def test_idempotency_keys_are_deterministic_and_within_stripes_limit():
    assert idempotency_key("invoice-item", "line_1") == "sluice:invoice-item:line_1"
    assert len(idempotency_key("invoice-item", "x" * 235)) == 255
    with pytest.raises(ValueError, match="over 255"):
        idempotency_key("invoice-item", "x" * 236)


def test_money_is_whole_cents(gateway):
    with pytest.raises(TypeError):
        gateway.create_invoice_item(
            customer="cus_contract",
            invoice="in_contract",
            sluice_line_id="line_contract",
            amount_cents=12.34,
            description="a float is never money",
        )


@override_settings(STRIPE_API_KEY="")
def test_without_a_key_the_gateway_refuses():
    with pytest.raises(StripeNotConfigured, match="STRIPE_API_KEY is empty"):
        StripeGateway.from_settings()


@override_settings(STRIPE_API_KEY=API_KEY, SLUICE_STRIPE_TIMEOUT_SECONDS=5)
def test_from_settings_talks_to_the_configured_base(stripe_mock):
    with override_settings(STRIPE_API_BASE=stripe_mock.url):
        assert StripeGateway.from_settings().retrieve_invoice("in_contract").id.startswith("in_")
