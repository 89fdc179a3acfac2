"""Budget alerts: an organization's monthly budget and its thresholds, the alerts fired (one per
month and threshold), the customer's webhook endpoint, and the webhook outbox with the log of
each delivery attempt."""

from django.db import models
from django.db.models import Q

from foundation.ids import new_public_id
from foundation.secretbox import SealedField
from tenants.models import Organization
from tenants.scoping import TenantOwnedModel

DEFAULT_THRESHOLDS = (50, 80, 100)
FORECAST = "forecast"


def default_thresholds() -> list[int]:
    return list(DEFAULT_THRESHOLDS)


def new_budget_event_id() -> str:
    return new_public_id("evt")


def new_webhook_endpoint_id() -> str:
    return new_public_id("whep")


def new_webhook_delivery_id() -> str:
    return new_public_id("whdl")


class Budget(TenantOwnedModel):
    """An organization's monthly budget in micro-dollars. Alerts fire as the month's spend
    reaches each percentage of ``thresholds``, and (``forecast_alert``) when the month's
    forecast passes the budget; nothing is slowed or refused (that is a spend cap's work)."""

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="+")
    monthly_micros = models.BigIntegerField(help_text="The budget per calendar month (UTC)")
    thresholds = models.JSONField(
        default=default_thresholds, help_text="Percentages of the budget, ascending"
    )
    forecast_alert = models.BooleanField(
        default=True, help_text="Alert when the month's forecast passes the budget"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["organization_id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(monthly_micros__gt=0), name="budget_more_than_nothing"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organization_id}: {self.monthly_micros} micro-dollars a month"


class BudgetAlertKind(models.TextChoices):
    THRESHOLD = "budget.threshold_reached", "Threshold reached"
    FORECAST = "budget.forecast_exceeded", "Forecast over budget"


class BudgetAlert(TenantOwnedModel):
    """A threshold of a budget reached in a month: one row per organization, month and
    threshold (``"50"``, ``"80"``, ``"100"``, … or ``"forecast"``), whatever number of checks
    see it at once. Its ``public_id`` is the event id the e-mail and the webhook carry."""

    public_id = models.CharField(max_length=32, unique=True, default=new_budget_event_id)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    period_start = models.DateTimeField(help_text="The month's first instant, UTC")
    threshold = models.CharField(max_length=16, help_text="A percentage, or 'forecast'")
    kind = models.CharField(max_length=32, choices=BudgetAlertKind.choices)
    budget_micros = models.BigIntegerField(help_text="The budget when it fired")
    month_to_date_micros = models.BigIntegerField()
    forecast_micros = models.BigIntegerField()
    fired_at = models.DateTimeField()
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["-fired_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "period_start", "threshold"], name="budget_alert_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.organization_id} {self.period_start:%Y-%m} {self.threshold}"


class WebhookEndpoint(TenantOwnedModel):
    """Where an organization's budget alerts are posted, and the secret they are signed with:
    sealed at rest (``foundation.secretbox``), shown to the customer once."""

    public_id = models.CharField(max_length=32, unique=True, default=new_webhook_endpoint_id)
    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="+")
    url = models.URLField(max_length=2000)
    secret_sealed = SealedField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["organization_id"]

    def __str__(self) -> str:
        return f"{self.public_id} {self.url}"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Given up"


class WebhookDelivery(TenantOwnedModel):
    """One event to post to the organization's endpoint: written in the transaction that fires
    the alert, then claimed by a worker (``SELECT … FOR UPDATE SKIP LOCKED`` and a lease) and
    posted until the endpoint answers 2xx, backing off between attempts, given up after
    ``SLUICE_WEBHOOK_MAX_ATTEMPTS``. ``body`` is the exact JSON posted (and signed)."""

    public_id = models.CharField(max_length=32, unique=True, default=new_webhook_delivery_id)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    alert = models.ForeignKey(BudgetAlert, on_delete=models.CASCADE, related_name="deliveries")
    event_type = models.CharField(max_length=32, choices=BudgetAlertKind.choices)
    body = models.TextField()
    state = models.CharField(
        max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    claim_token = models.CharField(max_length=32, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(state="pending"),
                name="webhook_delivery_due",
            )
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.event_type} ({self.state})"


class WebhookAttempt(TenantOwnedModel):
    """One try of a delivery: when, to which URL, what the endpoint answered (or why there was
    no answer) and how long it took. The delivery log the customer reads."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    attempted_at = models.DateTimeField()
    url = models.URLField(max_length=2000)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField()

    class Meta(TenantOwnedModel.Meta):
        ordering = ["attempted_at", "id"]

    def __str__(self) -> str:
        return f"{self.delivery_id} at {self.attempted_at}: {self.status_code or self.error}"
