"""The spend caps API: ``/api/v1/orgs/{org}/spend-caps/`` lists the organization's caps with
this month's spend against each; ``…/spend-caps/organization/`` and
``…/spend-caps/clusters/{cluster}/`` set (PUT) or remove (DELETE) one. Owners and billing
members change them; admins read them."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response

from foundation.api.validation import validated_data
from tenants.api.base import OrganizationScopedView
from tenants.roles import read_write_scope_map

from .. import caps
from ..caps import MAX_CAP_MICROS
from ..money import MAX_MICROS, dollars_exact, micros_from_dollars

CAP_SCOPES = read_write_scope_map("billing")


@extend_schema_field(OpenApiTypes.STR)
class UsdField(serializers.Field):
    """US dollars as a decimal string ("250", "99.50"; at most six decimals, ASCII digits);
    micro-dollars inside. Bad input is ``money.InvalidAmount`` (a 400 ``invalid_amount``)."""

    def __init__(self, *, allow_zero: bool = True, maximum_micros: int = MAX_MICROS, **kwargs):
        self.allow_zero, self.maximum_micros = allow_zero, maximum_micros
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> int:
        return micros_from_dollars(
            data,
            field=self.field_name,
            allow_zero=self.allow_zero,
            maximum_micros=self.maximum_micros,
        )

    def to_representation(self, value: int) -> str:
        return dollars_exact(value)


class CapInputSerializer(serializers.Serializer):
    monthly_cap_usd = UsdField(
        maximum_micros=MAX_CAP_MICROS,
        help_text='The cap per calendar month (UTC), decimal US dollars: "250", "99.50", at most '
        'six decimal places, from 0 ("0" stops all growth) to 10000000. Anything else is a 400 '
        "`invalid_amount` problem whose `reason` is `not_a_string`, `not_a_decimal`, "
        "`negative`, `too_many_decimals` or `too_large`",
    )


class CapClusterSerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    name = serializers.CharField()


class CapSerializer(serializers.Serializer):
    cluster = CapClusterSerializer(
        allow_null=True, help_text="The cluster capped; null for the organization's own cap"
    )
    monthly_cap_usd = UsdField(source="cap.monthly_micros")
    monthly_cap_micros = serializers.IntegerField(source="cap.monthly_micros")
    month_to_date_usd = UsdField(source="month_to_date_micros")
    reached = serializers.SerializerMethodField()
    reached_at = serializers.DateTimeField(source="hold.reached_at", allow_null=True)

    def get_reached(self, status) -> bool:
        return status.hold is not None


class CapsOverviewSerializer(serializers.Serializer):
    month = serializers.DateTimeField(source="period_start", help_text="The month's first instant")
    month_to_date_usd = UsdField(source="month_to_date_micros")
    caps = CapSerializer(many=True)


class SpendCapsView(OrganizationScopedView):
    """The organization's spend caps. A reached cap slows its shared-Kafka clusters down to the
    throttle floors and refuses growth (`spend_cap_reached`); nothing is deleted, and storage
    and partition-hours keep accruing."""

    scope_map = CAP_SCOPES
    serializer_class = CapsOverviewSerializer

    def get(self, request, org):
        overview = caps.caps_overview(organization=self.organization)
        return Response(CapsOverviewSerializer(overview).data)


class _CapView(OrganizationScopedView):
    abstract = True
    scope_map = CAP_SCOPES
    serializer_class = CapsOverviewSerializer

    def _set(self, cluster: str | None) -> Response:
        caps.cluster_to_cap(organization=self.organization, cluster_public_id=cluster)  # 404 first
        data = validated_data(CapInputSerializer, self.request.data)
        caps.cap_set(
            organization=self.organization,
            actor=self.actor,
            monthly_micros=data["monthly_cap_usd"],
            cluster_public_id=cluster,
        )
        return Response(
            CapsOverviewSerializer(caps.caps_overview(organization=self.organization)).data
        )

    def _remove(self, cluster: str | None) -> Response:
        caps.cap_remove(organization=self.organization, actor=self.actor, cluster_public_id=cluster)
        return Response(status=204)


class OrganizationCapView(_CapView):
    """The organization's own cap, over all its clusters."""

    @extend_schema(request=CapInputSerializer, responses=CapsOverviewSerializer)
    def put(self, request, org):
        return self._set(None)

    @extend_schema(responses={204: None})
    def delete(self, request, org):
        return self._remove(None)


class ClusterCapView(_CapView):
    """One cluster's cap (besides the organization's)."""

    @extend_schema(request=CapInputSerializer, responses=CapsOverviewSerializer)
    def put(self, request, org, cluster):
        return self._set(cluster)

    @extend_schema(responses={204: None})
    def delete(self, request, org, cluster):
        return self._remove(cluster)
