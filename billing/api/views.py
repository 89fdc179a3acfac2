from django.http import HttpResponse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from clusters import selectors as cluster_selectors
from foundation.api.renderers import CsvRenderer
from foundation.api.validation import validated_data
from foundation.errors import InvalidInput as DomainInvalidInput
from tenants.api.base import (
    AddressRateThrottle,
    OrganizationScopedView,
    OrganizationScopedViewSet,
    add_rate_limit_headers,
)
from tenants.roles import read_write_scope_map

from .. import accounts, costs, estimates, invoices, recommendation, selectors
from ..models import Currency, Invoice
from . import serializers as s
from .filters import InvoiceFilter
from .recommendation_serializers import RecommendationSerializer

# Any member may read usage (every role has usage:read).
USAGE_SCOPES = {"GET": "usage:read", "HEAD": "usage:read", "OPTIONS": "usage:read"}

QUERY_PARAMETERS = [
    OpenApiParameter(
        "granularity",
        str,
        enum=list(selectors.GRANULARITIES),
        default="hour",
        description="Bucket length: a UTC hour, or a UTC day (24 hours)",
    ),
    OpenApiParameter(
        "dimension",
        str,
        many=True,
        explode=True,
        enum=list(selectors.DIMENSIONS),
        description="Repeat it, or give a comma-separated list; all dimensions by default",
    ),
    OpenApiParameter(
        "start",
        OpenApiTypes.DATETIME,
        description="RFC 3339, with its offset; floored to a bucket boundary. Default: `end` "
        "less 24 hours (hour) or 30 days (day)",
    ),
    OpenApiParameter(
        "end",
        OpenApiTypes.DATETIME,
        description="RFC 3339, exclusive; raised to a bucket boundary. Default: the end of the "
        "current bucket. At most 31 days after `start` by hour, 400 days by day",
    ),
]

DESCRIPTION = (
    "\n\nEvery bucket of `[start, end)` is listed, 0 where nothing was used. `quantity` is in "
    "the dimension's `unit`, with adjustments (usage found after its hour was invoiced) folded "
    "into the bucket of the hour they correct; `adjustment` is that part. `complete` is true "
    "once every hour the cluster lived in the bucket is recorded and final for metering. An "
    "invalid query is a 400 `validation` problem with `errors` on `granularity`, `dimension`, "
    "`start` or `end` (`end` also for an empty or too long range)."
)


class _UsageView(OrganizationScopedView):
    abstract = True
    scope_map = USAGE_SCOPES

    def _query(self) -> dict:
        return validated_data(s.UsageQuerySerializer, self.request.query_params)


class OrganizationUsageView(_UsageView):
    """Usage of all the organization's clusters together, per dimension and bucket."""

    @extend_schema(
        parameters=QUERY_PARAMETERS,
        responses=s.UsageSerializer,
        description="Usage of all the organization's clusters together (deleted ones "
        "included), per dimension and bucket. `limit_per_bucket` is null: tier limits bind "
        "each cluster on its own." + DESCRIPTION,
    )
    def get(self, request, org):
        query = self._query()
        usage = selectors.organization_usage(
            organization=self.organization, window=query["window"], dimensions=query["dimension"]
        )
        return Response(s.UsageSerializer(usage).data)


class ClusterUsageView(_UsageView):
    """Usage of one cluster, per dimension and bucket, with its tier's limit per bucket."""

    @extend_schema(
        parameters=QUERY_PARAMETERS,
        responses=s.UsageSerializer,
        description="Usage of one cluster, per dimension and bucket, with the most its tier "
        "(times its capacity units) allows per bucket (`limit_per_bucket`)." + DESCRIPTION,
    )
    def get(self, request, org, cluster):
        found = cluster_selectors.live_cluster(organization=self.organization, public_id=cluster)
        if found is None:
            raise NotFound()
        query = self._query()
        usage = selectors.cluster_usage(
            cluster=found, window=query["window"], dimensions=query["dimension"]
        )
        return Response(s.UsageSerializer(usage).data)


# The billing account and invoices -------------------------------------------------------------

BILLING_SCOPES = read_write_scope_map("billing")


class BillingAccountView(OrganizationScopedView):
    """Who the organization's invoices are addressed to. Owners and billing members change it;
    admins read it."""

    scope_map = BILLING_SCOPES
    serializer_class = s.BillingAccountSerializer

    def get(self, request, org):
        return Response(self._body(accounts.billing_account_of(organization=self.organization)))

    @extend_schema(
        request=s.BillingAccountInputSerializer,
        responses=s.BillingAccountSerializer,
        description="Set every field a tenant may set (blank clears one). The Stripe customer "
        "id and the payment status are Sluice's to set.",
    )
    def put(self, request, org):
        return self._update(s.BillingAccountInputSerializer)

    @extend_schema(
        request=s.BillingAccountPatchSerializer,
        responses=s.BillingAccountSerializer,
        description="Set some fields; the others keep their values.",
    )
    def patch(self, request, org):
        return self._update(s.BillingAccountPatchSerializer)

    def _update(self, serializer_class) -> Response:
        data = validated_data(serializer_class, self.request.data)
        account = accounts.billing_account_update(
            organization=self.organization, actor=self.actor, **data
        )
        return Response(self._body(account))

    def _body(self, account) -> dict:
        return s.BillingAccountSerializer(account).data


class InvoiceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """The organization's invoices, newest month first: one per calendar month (UTC). The
    current month's is a `draft`, recomputed as usage comes in, until the month closes."""

    model = Invoice
    scope_map = BILLING_SCOPES
    serializer_class = s.InvoiceSerializer
    ordering = ("-period_start", "-id")
    filter_backends = [DjangoFilterBackend]
    filterset_class = InvoiceFilter

    def get_serializer_class(self):
        return s.InvoiceDetailSerializer if self.action == "retrieve" else s.InvoiceSerializer

    def scope_queryset(self, queryset):
        if self.action == "retrieve":
            return queryset.prefetch_related("lines")
        return queryset


class InvoiceLinesCsvView(OrganizationScopedView):
    """An invoice's lines as CSV."""

    model = Invoice
    scope_map = BILLING_SCOPES
    renderer_classes = [JSONRenderer, CsvRenderer]

    @extend_schema(
        responses={(200, "text/csv"): OpenApiTypes.STR},
        description="One row per line after a header row (RFC 4180, CRLF line ends): "
        + ", ".join(f"`{column}`" for column in invoices.CSV_COLUMNS)
        + ". Amounts are decimal US dollars: `unit_price_usd` and `amount_usd` to the "
        "micro-dollar, `billed_usd` the line's cents (the amounts the total adds up).",
    )
    def get(self, request, *args, **kwargs):
        invoice = self.get_object()
        response = HttpResponse(invoices.lines_csv(invoice), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{invoices.csv_filename(invoice)}"'
        return response


# Costs ---------------------------------------------------------------------------------------

COST_PARAMETERS = [
    OpenApiParameter(
        "start",
        OpenApiTypes.DATE,
        description="The first UTC day, YYYY-MM-DD. Default: the first day of the month of the "
        "range's last day",
    ),
    OpenApiParameter(
        "end",
        OpenApiTypes.DATE,
        description="The day after the last (exclusive), YYYY-MM-DD. Default: tomorrow (today "
        f"included). At most {costs.MAX_DAYS} days after `start`",
    ),
    OpenApiParameter(
        "granularity",
        str,
        enum=list(costs.GRANULARITIES),
        default="day",
        description="One row per UTC day",
    ),
    OpenApiParameter(
        "cluster",
        str,
        description="One cluster's id (deleted clusters included); all of them by default",
    ),
]


class CostsView(OrganizationScopedView):
    """What the organization's clusters cost, per day, cluster, dimension and price."""

    scope_map = BILLING_SCOPES

    @extend_schema(
        parameters=COST_PARAMETERS,
        responses=s.CostsSerializer,
        description="What each cluster's usage cost per UTC day of `[start, end)` (the current "
        "month to date by default), per dimension and price in force (a price change or a "
        "change of tier inside a day gives two rows), rated as invoices are; days and clusters "
        "with nothing recorded have no row. Usage only: an adjustment to an invoiced hour is "
        "on the next invoice, not here. Each day is rated on its own and rounded down to the "
        "micro-dollar, so the days of a month may add up to slightly less than the invoice "
        "(under one micro-dollar per invoice line per day): the invoice is the bill. An "
        "invalid query is a 400 `validation` problem with `errors` on `start`, `end` (also "
        f"for an empty range or one over {costs.MAX_DAYS} days), `granularity` or `cluster` "
        "(not one of the organization's clusters).",
    )
    def get(self, request, org):
        query = validated_data(s.CostQuerySerializer, request.query_params)
        try:
            rows = costs.daily_costs(
                organization=self.organization,
                start=query["start"],
                end=query["end"],
                cluster=query.get("cluster"),
            )
        except DomainInvalidInput as error:
            raise ValidationError({error.extra["field"]: [error.detail]}) from error
        total = sum(row.amount_micros for row in rows)
        body = {
            "start": query["start"],
            "end": query["end"],
            "granularity": query["granularity"],
            "currency": Currency.USD,
            "total_micros": total,
            "total_usd": invoices.dollars(total, places=6),
            "costs": rows,
        }
        return Response(s.CostsSerializer(body).data)


class EstimateView(APIView):
    """What a cluster of a tier would cost for a month of steady use: public, per address
    rate-limited."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [AddressRateThrottle]
    rate_limit = None  # the limit counted, set by the throttle

    @extend_schema(
        request=s.EstimateInputSerializer,
        responses=s.EstimateSerializer,
        auth=[],
        description="The cost of a cluster of the tier `type` for the 730 hours from the "
        "current hour, by dimension, rated as invoices are (the same rating, on the ledger "
        "rows the workload would meter), at the prices in force each hour. The workload is "
        "steady: `ingress_mbps` written and `egress_mbps` read every second, `partitions` "
        "held, and a full retention of what is written stored all month (ingress times "
        "`retention_hours`, one copy); tiers priced by the hour bill each hour. No sign-in; "
        "rate-limited per network address (`SLUICE_RATE_LIMIT_ADDRESS_PER_MINUTE`). A "
        "workload over the tier's limits at its size is a 400 `tier_limit_exceeded` problem "
        "naming the `field`; a tier not offered, or capacity units outside the tier's range, "
        "a 400 `validation` problem naming it.",
    )
    def post(self, request):
        data = validated_data(s.EstimateInputSerializer, request.data)
        workload = estimates.Workload.of(data)
        estimate = estimates.estimate(tier_slug=data["type"], workload=workload)
        return Response(s.EstimateSerializer(estimate).data)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        add_rate_limit_headers(response, self.rate_limit)
        return response


# The tier recommendation ----------------------------------------------------------------------


class ClusterRecommendationView(OrganizationScopedView):
    """Which offered tier would have carried the cluster's last 30 days for the least."""

    # Any member who may read the cluster (clusters:read).
    scope_map = read_write_scope_map("clusters")

    @extend_schema(
        responses=RecommendationSerializer,
        description="The cluster's last 30 days (the 720 hours up to its latest complete "
        "ledger hour, or fewer since it took its current tier and size) re-rated on every "
        "offered tier whose limits fit its busiest hour (ingress and egress MB/s, partitions, "
        "storage; and its topics' longest retention) with `headroom_percent` to spare "
        "(`SLUICE_RECOMMENDATION_HEADROOM_PERCENT`), Dedicated at the fewest capacity units "
        "that fit, by the same rating as invoices; the cheapest is `recommended` when it costs "
        "less a month (730 hours) than the current tier. With fewer than `required_hours` "
        "complete hours the `verdict` is `not_enough_history` and the figures are null. Any "
        "member who may read the cluster may read it; another organization's cluster, or a "
        "deleted one, is a 404.",
    )
    def get(self, request, org, cluster):
        found = cluster_selectors.live_cluster(organization=self.organization, public_id=cluster)
        if found is None:
            raise NotFound()
        return Response(
            RecommendationSerializer(recommendation.recommendation_for(cluster=found)).data
        )
