from django.db import models
from django.db.models import F, Q

from clusters.models import METERED_DIMENSION_CHOICES, Cell, Cluster, Dimension
from foundation.ids import new_public_id
from tenants.models import Organization
from tenants.scoping import TenantOwnedModel

from .countries import COUNTRY_CHOICES


class UsageHour(TenantOwnedModel):
    """One cluster's usage of one dimension in one UTC hour: the ledger's unit.

    Written only as a whole recomputed snapshot (an upsert), never incremented, so computing an
    hour again, twice or concurrently, leaves the same row. ``complete`` is False while samples
    are missing (a gap, or the hour still going on). A recomputation may change an hour until
    the organization's month is closed (``ClosedMonth``): from then on the row is final, and a
    change becomes a UsageAdjustment instead.
    """

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="usage_hours")
    dimension = models.CharField(max_length=32, choices=METERED_DIMENSION_CHOICES)
    hour = models.DateTimeField(help_text="Start of the hour, UTC")
    quantity = models.BigIntegerField()
    complete = models.BooleanField(default=False)
    computed_at = models.DateTimeField()

    class Meta(TenantOwnedModel.Meta):
        ordering = ["hour", "cluster_id", "dimension"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "dimension", "hour"], name="usage_hour_unique"
            ),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="usage_hour_not_negative"),
        ]
        indexes = [
            models.Index(fields=["organization", "hour"], name="usage_hour_by_org"),
        ]

    def __str__(self) -> str:
        return f"{self.cluster_id} {self.dimension} {self.hour:%Y-%m-%d %H}:00 = {self.quantity}"


class UsageAdjustment(TenantOwnedModel):
    """Usage that changed after its hour was invoiced: billed on the next invoice."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="+")
    dimension = models.CharField(max_length=32, choices=METERED_DIMENSION_CHOICES)
    hour = models.DateTimeField()
    quantity = models.BigIntegerField(help_text="Signed: what the final hour missed or overcounted")
    created_at = models.DateTimeField(auto_now_add=True)
    # The month whose invoice carries it (the first to close after it was made): kept on the
    # adjustment, not the invoice, so replaying a month from the ledger finds the same lines.
    billed_period_start = models.DateTimeField(null=True, blank=True)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["created_at"]
        indexes = [
            models.Index(fields=["cluster", "dimension", "hour"], name="usage_adjustment_hour"),
            models.Index(
                fields=["organization", "billed_period_start"], name="usage_adjustment_billed"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.cluster_id} {self.dimension} {self.hour:%Y-%m-%d %H}:00 {self.quantity:+}"


class ClosedMonth(TenantOwnedModel):
    """An organization's calendar month (UTC) that the month close has frozen: every ledger
    hour of it is final from ``closed_at``. One row per organization and month, not a mark on
    each of its hours: a month of 10,000 clusters is some 30 million rows, and marking each
    would rewrite them all. Kept when invoices are voided or replayed: it is the ledger's
    state, not the invoice's."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    period_start = models.DateTimeField(help_text="The first instant of the month, UTC")
    closed_at = models.DateTimeField()
    estimated = models.BooleanField(
        default=False, help_text="Closed over hours still incomplete after the grace period"
    )

    class Meta(TenantOwnedModel.Meta):
        ordering = ["-period_start", "organization_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "period_start"], name="closed_month_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.organization_id} {self.period_start:%Y-%m} closed at {self.closed_at}"


class MeteringCursor(models.Model):
    """How far metering has read a cell's Prometheus: the watermark.

    Hours that ended at or before ``watermark`` are closed: samples that late are not expected
    any more, and runs no longer read them. Hours after it are open and are recomputed by every
    run, so samples that land late are counted. Moving the watermark back (``reopen``) makes
    the next run recompute from there.
    """

    cell = models.OneToOneField(Cell, on_delete=models.CASCADE, related_name="metering_cursor")
    watermark = models.DateTimeField()
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.cell_id}: closed up to {self.watermark:%Y-%m-%d %H:%M:%S}"


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


# Pushing to Stripe --------------------------------------------------------------------------


class OutboxState(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"
    FAILED = "failed", "Failed (needs an operator)"


class StripeOutbox(TenantOwnedModel):
    """One closed invoice to push to Stripe: written in the transaction that closes the
    invoice, so a closed invoice is never forgotten and never pushed without being closed.

    A worker claims a due row (``SELECT … FOR UPDATE SKIP LOCKED``), takes a lease
    (``claim_token`` until ``claimed_until``) and runs the push's steps, each with its own
    Idempotency-Key, saving each Stripe id on the invoice, its lines and the account as it
    returns; a worker that dies loses its lease and the next one goes on from the ids saved.
    Retryable failures come back at ``next_attempt_at`` (backing off); a refusal (4xx) makes
    the row ``failed`` until an operator retries it."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    invoice = models.OneToOneField(Invoice, on_delete=models.PROTECT, related_name="outbox")
    state = models.CharField(
        max_length=16, choices=OutboxState.choices, default=OutboxState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    claim_token = models.CharField(max_length=32, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["created_at", "id"]
        verbose_name = "Stripe outbox item"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(state="pending"),
                name="stripe_outbox_due",
            )
        ]

    def __str__(self) -> str:
        return f"push {self.invoice_id} ({self.state})"


class AlertKind(models.TextChoices):
    ESTIMATED_CLOSE = "estimated_close", "Month closed over incomplete hours"
    CLOSE_FAILED = "close_failed", "A month close failed"
    STRIPE_REFUSED = "stripe_refused", "Stripe refused a push"
    STRIPE_WEBHOOK = "stripe_webhook", "A Stripe event could not be applied"


class BillingAlert(models.Model):
    """Something about money an operator must look at: shown in the admin until resolved, and
    logged at ERROR (``sluice.billing.alerts``) for whatever watches the logs. At most one open
    alert per kind and subject, so a job that runs every minute does not bury the list."""

    kind = models.CharField(max_length=32, choices=AlertKind.choices)
    subject = models.CharField(max_length=64, help_text="What it is about: an invoice's id, …")
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "subject"],
                condition=Q(resolved_at__isnull=True),
                name="billing_alert_one_open",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.subject}"


# Stripe's events ----------------------------------------------------------------------------


class StripeEventOutcome(models.TextChoices):
    PENDING = "pending", "Waiting to be applied"
    APPLIED = "applied", "Applied"
    UNCHANGED = "unchanged", "Nothing to change"
    IGNORED = "ignored", "Ignored"
    UNKNOWN_OBJECT = "unknown_object", "About an invoice or customer Sluice does not know"
    FAILED = "failed", "Could not be applied"


class StripeEvent(models.Model):
    """One event Stripe delivered to the webhook, stored once under Stripe's own id (a second
    delivery of it finds this row and does nothing), then applied by a task.

    Kept: what says which event it was and what became of it, and ``summary``, the few fields
    of the object that applying it reads when Stripe cannot be asked again (no API key): an
    invoice's status, customer and Sluice id, a customer's having a payment method. Not the
    payload, which carries names, e-mail and postal addresses Sluice has no use for here."""

    event_id = models.CharField(max_length=255, help_text="Stripe's id (evt_…)")
    type = models.CharField(max_length=100, help_text="invoice.paid, customer.updated, …")
    object_id = models.CharField(
        max_length=255, blank=True, help_text="The Stripe object it is about (in_…, cus_…)"
    )
    livemode = models.BooleanField()
    occurred_at = models.DateTimeField(help_text="When Stripe made the event")
    summary = models.JSONField(default=dict, blank=True)
    organization = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        help_text="Whose invoice or account it was about, once found",
    )
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(
        max_length=16, choices=StripeEventOutcome.choices, default=StripeEventOutcome.PENDING
    )
    detail = models.TextField(blank=True, help_text="What applying it did, or why it could not")

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["event_id"], name="stripe_event_once"),
        ]
        indexes = [
            models.Index(
                fields=["received_at"],
                condition=Q(processed_at__isnull=True),
                name="stripe_event_pending",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_id} {self.type} ({self.outcome})"
