"""The operators' view of spend control, read-only: every organization's caps and the holds
they opened (reached, lifted and why), the budget alerts fired, and the webhook deliveries
with their attempts. What changes them is the tenant's (caps, budgets) or the system's (the
spend check, the webhook outbox); an operator looks, and changes nothing here."""

from django.contrib import admin

from foundation.admin import ReadOnlyAdminMixin
from tenants.admin import AllTenantsMixin

from .models import BudgetAlert, SpendCap, SpendHold, WebhookDelivery


class _ReadOnly(ReadOnlyAdminMixin, AllTenantsMixin, admin.ModelAdmin):
    list_select_related = ["organization"]


@admin.register(SpendCap)
class SpendCapAdmin(_ReadOnly):
    list_display = ["organization", "cluster", "monthly_micros", "updated_at"]
    search_fields = ["organization__public_id", "organization__name", "cluster__public_id"]
    list_select_related = ["organization", "cluster"]


@admin.register(SpendHold)
class SpendHoldAdmin(_ReadOnly):
    list_display = [
        "organization",
        "cluster",
        "period_start",
        "cap_micros",
        "spend_micros",
        "reached_at",
        "lifted_at",
        "lift_reason",
    ]
    list_filter = [("lifted_at", admin.EmptyFieldListFilter), "lift_reason"]
    search_fields = ["organization__public_id", "organization__name"]
    list_select_related = ["organization", "cluster"]
    date_hierarchy = "reached_at"


@admin.register(BudgetAlert)
class BudgetAlertAdmin(_ReadOnly):
    list_display = [
        "public_id",
        "organization",
        "period_start",
        "threshold",
        "budget_micros",
        "month_to_date_micros",
        "fired_at",
        "emailed_at",
    ]
    list_filter = ["kind"]
    search_fields = ["public_id", "organization__public_id", "organization__name"]
    date_hierarchy = "fired_at"


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(_ReadOnly):
    list_display = [
        "public_id",
        "organization",
        "event_type",
        "state",
        "attempts",
        "next_attempt_at",
        "delivered_at",
    ]
    list_filter = ["state", "event_type"]
    search_fields = ["public_id", "organization__public_id", "organization__name"]
    exclude = ["claim_token"]
