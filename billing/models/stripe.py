"""Pushing invoices to Stripe, operator alerts, and the events Stripe sends."""

from django.db import models
from django.db.models import Q

from tenants.models import Organization
from tenants.scoping import TenantOwnedModel

from .invoices import Invoice

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
