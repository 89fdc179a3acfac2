"""The budget-alerts page under the Billing tab: the monthly budget and this month's alerts,
the webhook endpoint (its signing secret shown once, on the page that made it) and the
delivery log of its posts, each attempt with its status code or error and duration. Owners and
billing members change them; admins read them."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

from foundation.errors import DomainError
from tenants.access import OrganizationAccess
from tenants.forms import add_domain_error
from tenants.views.base import organization_page_context, organization_view

from . import budgets, presentation, webhook_endpoints, webhook_outbox
from .budget_forms import BudgetForm, WebhookEndpointForm
from .rating import MICROS_PER_CENT
from .services import month_start

SCOPES = {"GET": "billing:read", "POST": "billing:write"}


@organization_view(scopes=SCOPES)
def budget_alerts(request: HttpRequest, access: OrganizationAccess) -> HttpResponse:
    organization = access.organization
    budget = budgets.budget_of(organization=organization)
    endpoint = webhook_endpoints.endpoint_of(organization=organization)
    budget_form = BudgetForm(initial=_budget_initial(budget))
    endpoint_form = WebhookEndpointForm(initial={"url": endpoint.url if endpoint else ""})
    secret, status = None, 200
    action = request.POST.get("action") if request.method == "POST" else None
    actor = access.actor(request) if action else None
    try:
        if action == "budget":
            budget_form = BudgetForm(request.POST)
            if budget_form.is_valid():
                _save_budget(organization, actor, budget_form.cleaned_data)
                messages.success(request, "The budget is saved.")
                return redirect("billing:budget", org=organization.public_id)
        elif action == "remove-budget":
            budgets.budget_delete(organization=organization, actor=actor)
            messages.success(request, "The budget is removed: no more alerts.")
            return redirect("billing:budget", org=organization.public_id)
        elif action == "endpoint":
            endpoint_form = WebhookEndpointForm(request.POST)
            if endpoint_form.is_valid():
                saved = webhook_endpoints.endpoint_set(
                    organization=organization, actor=actor, **endpoint_form.cleaned_data
                )
                if saved.secret is None:
                    messages.success(request, "The webhook endpoint is saved.")
                    return redirect("billing:budget", org=organization.public_id)
                endpoint, secret = saved.endpoint, saved.secret
        elif action == "remove-endpoint":
            webhook_endpoints.endpoint_delete(organization=organization, actor=actor)
            messages.success(request, "The webhook endpoint is removed.")
            return redirect("billing:budget", org=organization.public_id)
    except DomainError as error:
        add_domain_error(budget_form if action == "budget" else endpoint_form, error)
    if action and secret is None:
        status = 400
    context = {
        **organization_page_context(access, "billing"),
        "may_edit": access.can("billing:write"),
        "budget": budget,
        "budget_usd": _usd(budget.monthly_micros) if budget else "",
        "budget_form": budget_form,
        "alerts": [
            {
                "alert": alert,
                "spent": _usd(alert.month_to_date_micros),
                "forecast": _usd(alert.forecast_micros),
            }
            for alert in budgets.alerts_of(
                organization=organization, period_start=month_start(timezone.now())
            )
        ],
        "endpoint": endpoint,
        "endpoint_form": endpoint_form,
        "secret": secret,
        "deliveries": webhook_outbox.deliveries_of(organization=organization),
    }
    response = render(request, "billing/budget_alerts.html", context, status=status)
    if secret:  # the secret is in this response and nowhere else: never cached
        add_never_cache_headers(response)
    return response


def _usd(micros: int) -> str:
    return presentation.usd(micros // MICROS_PER_CENT)


def _budget_initial(budget) -> dict:
    if budget is None:
        return {"forecast_alert": True}
    return {
        "monthly_usd": budgets.usd(budget.monthly_micros),
        "thresholds": ", ".join(str(value) for value in budget.thresholds),
        "forecast_alert": budget.forecast_alert,
    }


def _save_budget(organization, actor, data: dict) -> None:
    budgets.budget_set(
        organization=organization,
        actor=actor,
        monthly_micros=budgets.micros_from_dollars(data["monthly_usd"], field="monthly_usd"),
        thresholds=data["thresholds"],
        forecast_alert=data["forecast_alert"],
    )
