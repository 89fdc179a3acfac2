"""Billing accounts, invoices and their lines."""

from django.db import models
from django.db.models import F, Q

from clusters.models import Dimension
from foundation.ids import new_public_id
from tenants.models import Organization
from tenants.scoping import TenantOwnedModel

from ..countries import COUNTRY_CHOICES

# Accounts and invoices ------------------------------------------------------------------------


def new_invoice_id() -> str:
    # Not "inv": invitations have it; not "in": Stripe's invoice ids have it, shown alongside.
    return new_public_id("invc")


def new_invoice_line_id() -> str:
    return new_public_id("invl")


class Currency(models.TextChoices):
    USD = "usd", "US dollar"


class PaymentStatus(models.TextChoices):
    """What Stripe last said about paying: written by the system only, never by a tenant."""

    NONE = "none", "No payment method"
    OK = "ok", "In good standing"
    PAST_DUE = "past_due", "Past due"


class BillingAccount(TenantOwnedModel):
    """Who an organization's invoices are addressed to and how they are paid: one per
    organization, made the first time it is read or set (``services.billing_account_of``)."""

    organization = models.OneToOneField(
        Organization, on_delete=models.PROTECT, related_name="billing_account"
    )
    email = models.EmailField(max_length=254, blank=True, help_text="Where invoices are sent")
    name = models.CharField(max_length=200, blank=True, help_text="Person or company billed")
    address_line1 = models.CharField(max_length=200, blank=True)
    address_line2 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(
        max_length=2, blank=True, choices=COUNTRY_CHOICES, help_text="ISO 3166-1 alpha-2"
    )
    tax_id = models.CharField(max_length=64, blank=True, help_text="As the tax authority wrote it")
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.USD)
    stripe_customer_id = models.CharField(
        max_length=255, blank=True, help_text="Blank until the customer is created in Stripe"
    )
    payment_status = models.CharField(
        max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.NONE
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["id"]

    def __str__(self) -> str:
        return f"Billing account of {self.organization_id}"


class InvoiceState(models.TextChoices):
    DRAFT = "draft", "Draft"
    OPEN = "open", "Open"
    PAID = "paid", "Paid"
    UNCOLLECTIBLE = "uncollectible", "Uncollectible"
    VOID = "void", "Void"


# Forward only: Stripe's webhooks arrive out of order, and a late one must not move an invoice
# back (a "finalized" after "paid" changes nothing). Uncollectible may still be paid or voided.
INVOICE_TRANSITIONS: dict[str, frozenset[str]] = {
    InvoiceState.DRAFT: frozenset({InvoiceState.OPEN, InvoiceState.VOID}),
    InvoiceState.OPEN: frozenset(
        {InvoiceState.PAID, InvoiceState.UNCOLLECTIBLE, InvoiceState.VOID}
    ),
    InvoiceState.UNCOLLECTIBLE: frozenset({InvoiceState.PAID, InvoiceState.VOID}),
    InvoiceState.PAID: frozenset(),
    InvoiceState.VOID: frozenset(),
}


class Invoice(TenantOwnedModel):
    """An organization's bill for one calendar month (UTC): ``period_start`` is the first
    instant of the month, ``period_end`` the first of the next (exclusive). Totals are the sums
    of its lines: in micro-dollars, and in cents (each line rounded once, then added)."""

    public_id = models.CharField(max_length=32, unique=True, default=new_invoice_id)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    state = models.CharField(
        max_length=16, choices=InvoiceState.choices, default=InvoiceState.DRAFT
    )
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.USD)
    total_micros = models.BigIntegerField(default=0)
    total_cents = models.BigIntegerField(default=0)
    stripe_invoice_id = models.CharField(max_length=255, blank=True)
    estimated = models.BooleanField(
        default=False,
        help_text="Closed over hours that were still incomplete after the grace period",
    )
    payment_failed_at = models.DateTimeField(
        null=True, blank=True, help_text="Stripe's last failed attempt to collect it"
    )
    billed_to = models.JSONField(
        default=dict,
        blank=True,
        help_text="The billing account's name and address as they were when the month closed",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    rated_at = models.DateTimeField(null=True, blank=True, help_text="When its lines were rated")
    finalized_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["-period_start", "-id"]
        constraints = [
            # A voided invoice may be replaced by another for the same month.
            models.UniqueConstraint(
                fields=["organization", "period_start"],
                condition=~Q(state="void"),
                name="invoice_one_per_month",
            ),
            models.CheckConstraint(
                condition=Q(period_end__gt=F("period_start")), name="invoice_period_ordered"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.period_start:%Y-%m} ({self.state})"

    def may_become(self, state: str) -> bool:
        return state in INVOICE_TRANSITIONS[self.state]


class InvoiceLineKind(models.TextChoices):
    USAGE = "usage", "Usage"
    ADJUSTMENT = "adjustment", "Adjustment"


class InvoiceLine(TenantOwnedModel):
    """One cluster's use of one dimension at one price over a segment of the invoice's month.

    The cluster's id and name are kept as they were when the line was made: a cluster renamed
    or deleted later still reads as it was billed. ``amount_micros`` is
    ``quantity * unit_price_micros / per_units`` floored; ``amount_cents`` is it rounded once
    (half to even) and ``remainder_micros`` what that rounding left (signed). ``public_id`` is
    the line's ``sluice_line_id`` in Stripe's metadata.
    """

    public_id = models.CharField(max_length=32, unique=True, default=new_invoice_line_id)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    kind = models.CharField(
        max_length=16, choices=InvoiceLineKind.choices, default=InvoiceLineKind.USAGE
    )
    cluster_public_id = models.CharField(max_length=32)
    cluster_name = models.CharField(max_length=100)
    dimension = models.CharField(max_length=32, choices=Dimension.choices)
    segment_start = models.DateTimeField()
    segment_end = models.DateTimeField()
    quantity = models.BigIntegerField(help_text="In the dimension's unit; signed on adjustments")
    unit_price_micros = models.BigIntegerField()
    per_units = models.BigIntegerField()
    amount_micros = models.BigIntegerField()
    amount_cents = models.BigIntegerField()
    remainder_micros = models.BigIntegerField()
    estimated = models.BooleanField(
        default=False, help_text="Some of its hours were incomplete when the month closed"
    )
    position = models.PositiveIntegerField(help_text="The line's place on its invoice")
    stripe_invoice_item_id = models.CharField(max_length=255, blank=True)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["invoice_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "position"], name="invoice_line_position"),
            models.CheckConstraint(
                condition=Q(segment_end__gt=F("segment_start")),
                name="invoice_line_segment_ordered",
            ),
            models.CheckConstraint(condition=Q(per_units__gt=0), name="invoice_line_per_units"),
            models.CheckConstraint(
                condition=Q(amount_micros=F("amount_cents") * 10_000 + F("remainder_micros")),
                name="invoice_line_cents_and_remainder",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.cluster_public_id} {self.dimension}"
