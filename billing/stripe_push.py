"""The push of one closed invoice to Stripe, step by step, by the worker that claimed its
outbox row (``billing.outbox`` claims, runs and records the outcome).

The steps, in order, each skipped when its Stripe id is already saved:

1. the organization's customer (``BillingAccount.stripe_customer_id``);
2. the Stripe invoice (``Invoice.stripe_invoice_id``): a draft that waits for Sluice;
3. one invoice item per line (``InvoiceLine.stripe_invoice_item_id``), in the line's cents,
   lines of 0 cents included, so every line has its item and Stripe's list reads as Sluice's;
4. finalization, once the draft's total is Sluice's to the cent (else nothing is finalized:
   ``TotalsDiffer``); a draft already finalized is not finalized again.

Every Stripe id is saved, in its own transaction, the moment it returns, so a worker that dies
loses at most the step it was in; the next worker repeats that step with the same
Idempotency-Key and Stripe answers with the object it made. Stripe forgets keys after 24 hours:
once the row is that old, the invoice and each item are first looked up by their Sluice ids
(``metadata``) and created only when missing.

Fencing: every save first renews the claim in the same transaction, by its token, while the
lease still runs (``Claim.hold``); a worker that lost its claim (its lease ran out, and another
worker may hold the row now) raises ``ClaimLost`` instead and writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from clusters.models import Dimension
from tenants.models import Organization
from tenants.scoping import tenant_scope

from .accounts import billing_account_of
from .models import (
    BillingAccount,
    Invoice,
    InvoiceLine,
    InvoiceLineKind,
    OutboxState,
    PaymentStatus,
    StripeOutbox,
)
from .presentation import usage_amount
from .selectors import UNITS
from .stripe_gateway import StripeGateway, StripeInvoice

# How long Stripe replays an Idempotency-Key's first answer. A row younger than this made every
# one of its requests within it, so repeating a step with its key is safe; an older one looks
# for what exists first.
KEY_WINDOW = timedelta(hours=24)


class ClaimLost(Exception):
    """The worker no longer holds the row (its lease ran out): it must write nothing more."""


class TotalsDiffer(Exception):
    """The Stripe invoice's total is not Sluice's: it is left unfinalized for an operator."""


@dataclass(frozen=True)
class Claim:
    """A worker's hold on one outbox row, and the token that proves it."""

    outbox_pk: int
    token: str
    lease: timedelta

    @contextmanager
    def hold(self) -> Iterator[None]:
        """A transaction in which the claim holds: renewed (the lease starts again) by its
        token, the row locked until the transaction ends, so no one can claim it meanwhile."""
        with transaction.atomic():
            now = timezone.now()
            renewed = StripeOutbox.unscoped_all_tenants.filter(
                pk=self.outbox_pk,
                state=OutboxState.PENDING,
                claim_token=self.token,
                claimed_until__gt=now,
            ).update(claimed_until=now + self.lease)
            if not renewed:
                raise ClaimLost(f"outbox row {self.outbox_pk}: claim {self.token} lost")
            yield

    def check(self) -> None:
        """Raise ``ClaimLost`` unless the claim still holds (renewing it)."""
        with self.hold():
            pass


def push(claim: Claim, gateway: StripeGateway) -> StripeInvoice:
    """Run the steps still to do for the claimed row's invoice; the finalized Stripe invoice.
    Raises what the gateway raises, ``TotalsDiffer``, or ``ClaimLost``."""
    outbox = StripeOutbox.unscoped_all_tenants.select_related("invoice__organization").get(
        pk=claim.outbox_pk
    )
    invoice = outbox.invoice
    look_first = timezone.now() - outbox.created_at >= KEY_WINDOW
    with tenant_scope(invoice.organization):
        customer = _customer(claim, gateway, invoice.organization)
        stripe_invoice = _stripe_invoice(claim, gateway, invoice, customer, look_first=look_first)
        for line in invoice.lines.filter(stripe_invoice_item_id="").order_by("position"):
            _item(claim, gateway, line, customer, stripe_invoice, look_first=look_first)
        return _finalize(claim, gateway, invoice, stripe_invoice)


def _customer(claim: Claim, gateway: StripeGateway, organization: Organization) -> str:
    account = billing_account_of(organization=organization)
    if account.stripe_customer_id:
        return account.stripe_customer_id
    # Keyed by the organization: two of its invoices pushed at once make one customer.
    created = gateway.create_customer(
        organization=organization.public_id,
        name=account.name or organization.name,
        email=account.email,
    )
    with claim.hold():
        BillingAccount.objects.filter(pk=account.pk, stripe_customer_id="").update(
            stripe_customer_id=created
        )
    return BillingAccount.objects.values_list("stripe_customer_id", flat=True).get(pk=account.pk)


# An organization with no payment method on file is sent its invoice to pay by e-mail (Stripe's
# hosted invoice page) instead of being charged: charging would only fail.
DAYS_UNTIL_DUE = 30


def collection_of(invoice: Invoice) -> dict:
    """How Stripe collects the invoice: charged to the payment method on file, or, without one,
    sent to the billing e-mail, due in 30 days."""
    status = BillingAccount.objects.values_list("payment_status", flat=True).get(
        organization_id=invoice.organization_id
    )
    if status == PaymentStatus.NONE:
        return {"collection_method": "send_invoice", "days_until_due": DAYS_UNTIL_DUE}
    return {"collection_method": "charge_automatically"}


def _stripe_invoice(
    claim: Claim, gateway: StripeGateway, invoice: Invoice, customer: str, *, look_first: bool
) -> str:
    if invoice.stripe_invoice_id:
        return invoice.stripe_invoice_id
    found = (
        gateway.find_invoice(customer=customer, sluice_invoice_id=invoice.public_id)
        if look_first
        else None
    )
    made = found or gateway.create_invoice(
        customer=customer,
        sluice_invoice_id=invoice.public_id,
        description=f"Sluice, {invoice.period_start:%B %Y}",
        **collection_of(invoice),
    )
    with claim.hold():
        Invoice.objects.filter(pk=invoice.pk, stripe_invoice_id="").update(
            stripe_invoice_id=made.id
        )
    return made.id


def _item(
    claim: Claim,
    gateway: StripeGateway,
    line: InvoiceLine,
    customer: str,
    stripe_invoice: str,
    *,
    look_first: bool,
) -> None:
    found = (
        gateway.find_invoice_item(invoice=stripe_invoice, sluice_line_id=line.public_id)
        if look_first
        else None
    )
    made = found or gateway.create_invoice_item(
        customer=customer,
        invoice=stripe_invoice,
        sluice_line_id=line.public_id,
        amount_cents=line.amount_cents,
        description=item_description(line),
    )
    with claim.hold():
        InvoiceLine.objects.filter(pk=line.pk, stripe_invoice_item_id="").update(
            stripe_invoice_item_id=made.id
        )


def _finalize(
    claim: Claim, gateway: StripeGateway, invoice: Invoice, stripe_invoice: str
) -> StripeInvoice:
    current = gateway.retrieve_invoice(stripe_invoice)
    if current.total != invoice.total_cents:
        raise TotalsDiffer(
            f"Stripe invoice {stripe_invoice} totals {current.total} cents, Sluice's"
            f" {invoice.public_id} {invoice.total_cents}: not finalized"
        )
    if current.status != "draft":
        return current  # finalized by an earlier attempt whose answer was lost
    claim.check()  # a worker that lost the row does not finalize it
    return gateway.finalize_invoice(stripe_invoice)


def item_description(line: InvoiceLine) -> str:
    """What the customer reads on Stripe's invoice, the same on every attempt (a retried
    request must carry the parameters of the first): e.g. "orders (kc_…): Partition hours,
    2,232 partition-hours, 2026-10-01 00:00 to 2026-11-01 00:00 UTC"."""
    quantity = usage_amount(abs(line.quantity), UNITS[line.dimension])
    if line.quantity < 0:
        quantity = f"-{quantity}"
    kind = "Adjustment: " if line.kind == InvoiceLineKind.ADJUSTMENT else ""
    return (
        f"{kind}{line.cluster_name} ({line.cluster_public_id}): "
        f"{Dimension(line.dimension).label}, {quantity}, "
        f"{line.segment_start:%Y-%m-%d %H:%M} to {line.segment_end:%Y-%m-%d %H:%M} UTC"
    )
