"""What the outbox tests share: a closed October invoice written out by hand, Sluice pointed at
the Stripe stand-in (through the fault proxy), and the checks of exactly once."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from billing import outbox
from billing.accounts import billing_account_update
from billing.invoices import LineRecord, invoice_record
from billing.models import Invoice, InvoiceLine, InvoiceState, StripeOutbox
from tenants.audit import Actor
from tenants.models import Organization
from tenants.scoping import tenant_scope
from tests.support.stripe_standin import API_KEY, Fault, StripeStandIn

OCT_1, NOV_1 = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
SEP_30_23H = datetime(2026, 9, 30, 23, tzinfo=UTC)


def line(dimension, quantity, unit_price, per_units, micros, cents, remainder, **extra):
    return LineRecord(
        cluster_public_id="kc_orders",
        cluster_name="orders",
        dimension=dimension,
        segment_start=extra.pop("start", OCT_1),
        segment_end=extra.pop("end", NOV_1),
        quantity=quantity,
        unit_price_micros=unit_price,
        per_units=per_units,
        amount_micros=micros,
        amount_cents=cents,
        remainder_micros=remainder,
        **extra,
    )


# October 2026 of one Standard cluster, by hand:
# - 744 cluster-hours at 750,000 micros = 558,000,000 micros = 55,800 cents;
# - 3 partitions all month, 2,232 partition-hours at 1,500 micros = 3,348,000 micros = 334.8
#   cents -> 335, remainder -2,000;
# - one byte written at 80,000 micros per 10^9 bytes: 0 micros, a line of 0 cents;
# - an adjustment: September's last hour stored 3,600 GB-hours too many, at 137 micros per
#   10^9 byte-hours = -493,200 micros = -49.32 cents -> -49, remainder -3,200.
# Total: 55,800 + 335 + 0 - 49 = 56,086 cents.
LINES = [
    line("cluster_hours", 744, 750_000, 1, 558_000_000, 55_800, 0),
    line("partition_hours", 2_232, 1_500, 1, 3_348_000, 335, -2_000),
    line("ingress_bytes", 1, 80_000, 10**9, 0, 0, 0),
    line(
        "storage_byte_hours",
        -3_600_000_000_000,
        137,
        10**9,
        -493_200,
        -49,
        -3_200,
        kind="adjustment",
        start=SEP_30_23H,
        end=OCT_1,
    ),
]
TOTAL_CENTS = 56_086


def closed_invoice(organization: Organization) -> Invoice:
    """October's invoice, closed (open) with its outbox row, as the month close leaves it (in
    one transaction, on whose commit the push is queued)."""
    with transaction.atomic(), tenant_scope(organization):
        billing_account_update(
            organization=organization,
            actor=Actor(system="tests"),
            email="billing@acme.test",
            name="Acme Ltd",
        )
        invoice = invoice_record(
            organization=organization, year=2026, month=10, lines=LINES, state=InvoiceState.OPEN
        )
        outbox.outbox_add(invoice=invoice)
    return invoice


# The steps of a push as the proxy sees them: (method, path prefix, requests of that kind let
# through before the faulty one).
STEPS = {
    "customer": ("POST", "/v1/customers", 0),
    "invoice": ("POST", "/v1/invoices", 0),  # the create: it comes before the finalize
    "second item": ("POST", "/v1/invoiceitems", 1),
    "reading the draft": ("GET", "/v1/invoices/", 0),
    "finalize": ("POST", "/v1/invoices/", 0),
}


def plan(proxy, step: str, fault: Fault) -> None:
    method, prefix, passing = STEPS[step]
    proxy.plan(*[None] * passing, fault, method=method, path_prefix=prefix)


def stripe_at(url: str, *, timeout: float = 0.5):
    """Settings pointing Sluice's gateway at ``url`` (the stand-in or the proxy before it)."""
    return override_settings(
        STRIPE_API_KEY=API_KEY, STRIPE_API_BASE=url, SLUICE_STRIPE_TIMEOUT_SECONDS=timeout
    )


def row_of(invoice: Invoice) -> StripeOutbox:
    return StripeOutbox.unscoped_all_tenants.get(invoice_id=invoice.pk)


def time_passes() -> None:
    """Every backed-off row is due (what waiting out the backoff would do)."""
    StripeOutbox.unscoped_all_tenants.filter(state="pending").update(next_attempt_at=timezone.now())


def push_until_settled(invoice: Invoice, *, runs: int = 10) -> StripeOutbox:
    """Run the worker's loop, waiting out backoffs, until the row is done or failed."""
    for _ in range(runs):
        outbox.outbox_push_due()
        row = row_of(invoice)
        if row.state != "pending":
            return row
        time_passes()
    raise AssertionError(f"still pending after {runs} runs: {row.last_error}")


def assert_pushed_exactly_once(standin: StripeStandIn, invoice: Invoice) -> dict:
    """One customer, one Stripe invoice for ``invoice`` holding one item per line (each line's
    cents, its id saved on the line), totalling Sluice's to the cent, finalized by one request."""
    invoice = Invoice.unscoped_all_tenants.get(pk=invoice.pk)
    assert len(standin.customers) == 1
    made = [
        i
        for i in standin.invoices.values()
        if i["metadata"] == {"sluice_invoice_id": invoice.public_id}
    ]
    assert len(made) == 1, made
    stripe_invoice = made[0]
    assert invoice.stripe_invoice_id == stripe_invoice["id"]
    items = standin.items_of(stripe_invoice["id"])
    lines = InvoiceLine.unscoped_all_tenants.filter(invoice=invoice).order_by("position")
    by_line = {item["metadata"]["sluice_line_id"]: item for item in items}
    assert len(items) == len(by_line) == len(lines)
    for sluice_line in lines:
        item = by_line[sluice_line.public_id]
        assert (item["id"], item["amount"]) == (
            sluice_line.stripe_invoice_item_id,
            sluice_line.amount_cents,
        )
    assert stripe_invoice["total"] == invoice.total_cents == TOTAL_CENTS
    assert stripe_invoice["status"] == "open"
    finalizing = [r for r in standin.requests if r.path.endswith("/finalize") and not r.replayed]
    assert len(finalizing) == 1, finalizing
    assert invoice.state == InvoiceState.OPEN  # Stripe's events move it on, not the push
    return stripe_invoice
