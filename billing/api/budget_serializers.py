"""The shapes of the budget, its alerts, the webhook endpoint and its delivery log in the API.
Money is decimal US dollar strings (``"250.000000"``), as the rest of billing's API writes it."""

from __future__ import annotations

from rest_framework import serializers

from .. import budgets
from ..models import BudgetAlertKind, DeliveryState
from .serializers import Int64Field, Rfc3339Field


class BudgetInputSerializer(serializers.Serializer):
    monthly_usd = serializers.CharField(
        allow_blank=True,
        trim_whitespace=False,
        help_text='The budget per calendar month (UTC), decimal US dollars: "250", "250.00", at '
        "most six decimal places, more than 0 and at most 1000000000. Anything else is a 400 "
        "`invalid_amount` problem whose `reason` is `not_a_decimal`, `negative`, "
        "`too_many_decimals`, `zero` or `too_large`",
    )
    thresholds = serializers.ListField(
        child=serializers.IntegerField(),
        required=False,
        help_text=f"Percentages of the budget an alert fires at (default 50, 80, 100): 1 to "
        f"{budgets.MAX_THRESHOLDS} whole numbers from {budgets.THRESHOLD_RANGE[0]} to "
        f"{budgets.THRESHOLD_RANGE[1]}",
    )
    forecast_alert = serializers.BooleanField(
        required=False,
        default=True,
        help_text="Also alert when the month's forecast (the month so far extended to its end "
        "at its average hourly cost) passes the budget",
    )

    def validate_monthly_usd(self, value: str) -> int:
        return budgets.micros_from_dollars(value, field="monthly_usd")


class BudgetAlertSerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id", help_text="The event id webhooks carry")
    type = serializers.ChoiceField(source="kind", choices=BudgetAlertKind.choices)
    threshold_percent = serializers.SerializerMethodField(
        help_text="The percentage reached, or null for a forecast alert"
    )
    period_start = Rfc3339Field()
    fired_at = Rfc3339Field()
    budget_usd = serializers.SerializerMethodField()
    month_to_date_usd = serializers.SerializerMethodField(help_text="The month so far then")
    forecast_usd = serializers.SerializerMethodField(help_text="The month's forecast then")
    emailed = serializers.SerializerMethodField()

    def get_threshold_percent(self, alert) -> int | None:
        return int(alert.threshold) if alert.kind == BudgetAlertKind.THRESHOLD else None

    def get_budget_usd(self, alert) -> str:
        return budgets.usd(alert.budget_micros)

    def get_month_to_date_usd(self, alert) -> str:
        return budgets.usd(alert.month_to_date_micros)

    def get_forecast_usd(self, alert) -> str:
        return budgets.usd(alert.forecast_micros)

    def get_emailed(self, alert) -> bool:
        return alert.emailed_at is not None


class BudgetSerializer(serializers.Serializer):
    monthly_usd = serializers.SerializerMethodField(help_text="Decimal US dollars")
    monthly_micros = Int64Field()
    thresholds = serializers.ListField(child=serializers.IntegerField())
    forecast_alert = serializers.BooleanField()
    updated_at = Rfc3339Field()
    alerts = BudgetAlertSerializer(many=True, help_text="The alerts fired this month (UTC)")

    def get_monthly_usd(self, budget) -> str:
        return budgets.usd(budget.monthly_micros)


class WebhookEndpointInputSerializer(serializers.Serializer):
    url = serializers.CharField(
        max_length=2000,
        help_text="https:// (http:// only where the installation allows it), resolving only "
        "to public internet addresses; otherwise a 400 `webhook_url_refused` problem",
    )
    rotate_secret = serializers.BooleanField(
        required=False, default=False, help_text="Make a new signing secret (shown once)"
    )


class WebhookEndpointSerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    url = serializers.CharField()
    created_at = Rfc3339Field()
    updated_at = Rfc3339Field()


class WebhookEndpointSavedSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(
        allow_null=True,
        help_text="The signing secret (whsec_…), only when this request made it (a new "
        "endpoint, or rotate_secret): shown once, sealed at rest. Null otherwise",
    )


class WebhookAttemptSerializer(serializers.Serializer):
    attempted_at = Rfc3339Field()
    url = serializers.CharField()
    status_code = serializers.IntegerField(
        allow_null=True, help_text="The endpoint's answer, or null when there was none"
    )
    error = serializers.CharField(help_text="Why it failed, or blank")
    duration_ms = serializers.IntegerField()


class WebhookDeliverySerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    event_id = serializers.CharField(source="alert.public_id")
    event_type = serializers.ChoiceField(choices=BudgetAlertKind.choices)
    state = serializers.ChoiceField(
        choices=DeliveryState.choices,
        help_text="`pending` (trying, backing off between attempts), `delivered` (a 2xx "
        "answer) or `failed` (given up)",
    )
    attempts = serializers.IntegerField()
    next_attempt_at = Rfc3339Field(help_text="When a pending delivery is tried next")
    delivered_at = Rfc3339Field(allow_null=True)
    created_at = Rfc3339Field()
    last_error = serializers.CharField()
    attempt_log = WebhookAttemptSerializer(many=True, source="attempt_log.all")
