"""The organization's budget, its webhook endpoint and the endpoint's delivery log. Owners and
billing members set them; admins read them (the billing scopes)."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from foundation.api.secrets import SHOWN_ONCE_DESCRIPTION, ShownOnce
from foundation.api.validation import validated_data
from tenants.api.base import OrganizationScopedView, OrganizationScopedViewSet
from tenants.roles import read_write_scope_map

from .. import budgets, webhook_endpoints
from ..models import WebhookDelivery
from ..services import month_start
from . import budget_serializers as s

BILLING_SCOPES = read_write_scope_map("billing")


class BudgetView(OrganizationScopedView):
    """The monthly budget and the alerts it fired this month."""

    scope_map = BILLING_SCOPES

    @extend_schema(
        responses=s.BudgetSerializer,
        description="The budget, with this month's alerts; 404 when none is set.",
    )
    def get(self, request, org):
        budget = budgets.budget_of(organization=self.organization)
        if budget is None:
            raise NotFound("No budget is set")
        return Response(self._body(budget))

    @extend_schema(
        request=s.BudgetInputSerializer,
        responses=s.BudgetSerializer,
        description="Set the budget. Alerts fire, once per month and threshold, as the "
        "month's spend reaches each threshold (checked after every metering run), by e-mail "
        "to the billing account's address (or the owners') and to the webhook endpoint. An "
        "alert, not a limit: nothing is slowed or refused.",
    )
    def put(self, request, org):
        data = validated_data(s.BudgetInputSerializer, request.data)
        budget = budgets.budget_set(
            organization=self.organization,
            actor=self.actor,
            monthly_micros=data["monthly_usd"],
            thresholds=data.get("thresholds"),
            forecast_alert=data["forecast_alert"],
        )
        return Response(self._body(budget))

    @extend_schema(responses={204: None}, description="Remove the budget (no more alerts).")
    def delete(self, request, org):
        if not budgets.budget_delete(organization=self.organization, actor=self.actor):
            raise NotFound("No budget is set")
        return Response(status=204)

    def _body(self, budget) -> dict:
        period = month_start(timezone.now())
        budget.alerts = budgets.alerts_of(organization=self.organization, period_start=period)
        return s.BudgetSerializer(budget).data


class WebhookEndpointView(OrganizationScopedView):
    """Where budget alerts are posted, signed with a secret shown once."""

    scope_map = BILLING_SCOPES

    @extend_schema(responses=s.WebhookEndpointSerializer, description="404 when none is set.")
    def get(self, request, org):
        endpoint = webhook_endpoints.endpoint_of(organization=self.organization)
        if endpoint is None:
            raise NotFound("No webhook endpoint is set")
        return Response(s.WebhookEndpointSerializer(endpoint).data)

    @extend_schema(
        request=s.WebhookEndpointInputSerializer,
        responses={200: s.WebhookEndpointSavedSerializer, 201: s.WebhookEndpointSavedSerializer},
        description="Set the endpoint's URL (201 when it is made, with its signing secret). "
        "Each post carries `Sluice-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "
        '"<t>.<body>" under the secret>`. ' + SHOWN_ONCE_DESCRIPTION,
    )
    def put(self, request, org):
        data = validated_data(s.WebhookEndpointInputSerializer, request.data)
        saved = webhook_endpoints.endpoint_set(
            organization=self.organization,
            actor=self.actor,
            url=data["url"],
            rotate_secret=data["rotate_secret"],
        )
        saved.endpoint.secret = saved.secret
        return ShownOnce(
            s.WebhookEndpointSavedSerializer(saved.endpoint).data,
            secret_fields=("secret",),
            status=status.HTTP_201_CREATED if saved.created else status.HTTP_200_OK,
        )

    @extend_schema(
        responses={204: None},
        description="Remove the endpoint; its pending deliveries are given up.",
    )
    def delete(self, request, org):
        if not webhook_endpoints.endpoint_delete(organization=self.organization, actor=self.actor):
            raise NotFound("No webhook endpoint is set")
        return Response(status=204)


class WebhookDeliveryViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet
):
    """The delivery log: each webhook post, newest first, with every attempt (when, the status
    code or the error, how long it took)."""

    model = WebhookDelivery
    scope_map = BILLING_SCOPES
    serializer_class = s.WebhookDeliverySerializer
    ordering = ("-created_at", "-id")

    def scope_queryset(self, queryset):
        return queryset.select_related("alert").prefetch_related("attempt_log")
