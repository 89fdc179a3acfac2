"""The budget-alerts page under the Billing tab: the monthly budget and this month's alerts,
the webhook endpoint (its signing secret shown once, on the page that made it) and the
delivery log of its posts, each attempt with its status code or error and duration. Owners and
billing members change them; admins read them."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

from foundation.errors import DomainError
from tenants.access import OrganizationAccess
from tenants.forms import add_domain_error
from tenants.views.base import organization_page_context, organization_view
from tenants.views.feedback import back_with_refused, notify, refused_form

from . import budgets, money, presentation, webhook_endpoints, webhook_outbox
from .budget_forms import BudgetForm, WebhookEndpointForm
from .rating import MICROS_PER_CENT
from .services import month_start

SCOPES = {"GET": "billing:read", "POST": "billing:write"}


@organization_view(scopes=SCOPES)
def budget_alerts(request: HttpRequest, access: OrganizationAccess) -> HttpResponse:
    organization = access.organization
    budget = budgets.budget_of(organization=organization)
    endpoint = webhook_endpoints.endpoint_of(organization=organization)
    budget_initial = _budget_initial(budget)
    endpoint_initial = {"url": endpoint.url if endpoint else ""}
    secret = None
    if request.method == "POST":
        outcome = _apply(request, access, request.POST.get("action"))
        if isinstance(outcome, HttpResponse):
            return outcome
        endpoint, secret = outcome  # a new signing secret, shown on this page once
    budget_form = refused_form(
        request, "budget", lambda data: BudgetForm(data, initial=budget_initial)
    ) or BudgetForm(initial=budget_initial)
    endpoint_form = refused_form(
        request, "endpoint", lambda data: WebhookEndpointForm(data, initial=endpoint_initial)
    ) or WebhookEndpointForm(initial=endpoint_initial)
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
    response = render(request, "billing/budget_alerts.html", context)
    if secret:  # the secret is in this response and nowhere else: never cached
        add_never_cache_headers(response)
    return response


def _apply(request: HttpRequest, access: OrganizationAccess, action: str | None):
    """Make the change the form's ``action`` asks for. A redirect back to the page (to the
    form, if refused), or the endpoint and its new signing secret, to be shown once."""
    organization, actor = access.organization, access.actor(request)
    page = reverse("billing:budget", kwargs={"org": organization.public_id})
    form = BudgetForm(request.POST) if action == "budget" else WebhookEndpointForm(request.POST)
    place = "budget" if action in ("budget", "remove-budget") else "endpoint"
    try:
        if action == "budget" and form.is_valid():
            _save_budget(organization, actor, form.cleaned_data)
            notify(request, "The budget is saved.", place=place)
        elif action == "remove-budget":
            budgets.budget_delete(organization=organization, actor=actor)
            notify(request, "The budget is removed: no more alerts.", place=place)
        elif action == "endpoint" and form.is_valid():
            saved = webhook_endpoints.endpoint_set(
                organization=organization, actor=actor, **form.cleaned_data
            )
            if saved.secret is not None:
                return saved.endpoint, saved.secret
            notify(request, "The webhook endpoint is saved.", place=place)
        elif action == "remove-endpoint":
            webhook_endpoints.endpoint_delete(organization=organization, actor=actor)
            notify(request, "The webhook endpoint is removed.", place=place)
        elif action in ("budget", "endpoint"):
            return back_with_refused(request, form, page, place=place, key=place)
    except DomainError as error:
        if action not in ("budget", "endpoint"):
            notify(request, error.detail, place=place, error=True)
        else:
            add_domain_error(form, error)
            return back_with_refused(request, form, page, place=place, key=place)
    return redirect(f"{page}#{place}")


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
        monthly_micros=money.micros_from_dollars(data["monthly_usd"], field="monthly_usd"),
        thresholds=data["thresholds"],
        forecast_alert=data["forecast_alert"],
    )
