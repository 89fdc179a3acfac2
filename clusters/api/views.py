from drf_spectacular.utils import extend_schema
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants.api.base import OrganizationScopedViewSet
from tenants.roles import read_write_scope_map

from .. import selectors, services
from ..models import Cluster, Operation
from . import serializers as s


class CatalogView(APIView):
    """The cluster types on offer, their limits and current prices, and the regions."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(responses=s.CatalogSerializer, auth=[])
    def get(self, request):
        return Response(
            {
                "regions": selectors.regions(),
                "cluster_types": s.ClusterTypeSerializer(selectors.catalog(), many=True).data,
            }
        )


def _accepted(request, cluster: Cluster, operation: Operation) -> Response:
    location = request.build_absolute_uri(
        f"/api/v1/orgs/{cluster.organization.public_id}/operations/{operation.public_id}/"
    )
    body = {
        "cluster": s.ClusterSerializer(cluster).data,
        "operation": s.OperationSerializer(operation).data,
    }
    return Response(body, status=202, headers={"Location": location})


class ClusterViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """Kafka clusters. Creating, reshaping and deleting are asynchronous: they answer 202 with
    the Operation to follow."""

    model = Cluster
    scope_map = read_write_scope_map("clusters")
    serializer_class = s.ClusterSerializer

    def scope_queryset(self, queryset):
        return queryset.filter(deleted_at__isnull=True).select_related("cluster_type", "cell")

    @extend_schema(request=s.ClusterCreateSerializer, responses={202: s.AcceptedSerializer})
    def create(self, request, *args, **kwargs):
        data = _valid(s.ClusterCreateSerializer, request.data)
        cluster, operation = services.cluster_create(
            organization=self.organization,
            actor=self.actor,
            name=data["name"],
            type_slug=data["type"],
            region=data["region"],
            capacity_units=data.get("capacity_units"),
        )
        return _accepted(request, cluster, operation)

    @extend_schema(
        request=s.ClusterUpdateSerializer,
        responses={200: s.ClusterSerializer, 202: s.AcceptedSerializer},
        description="Rename (200), or resize / change type (202 with the Operation).",
    )
    def partial_update(self, request, *args, **kwargs):
        cluster = self.get_object()
        data = _valid(s.ClusterUpdateSerializer, request.data)
        cluster, operation = services.cluster_update(
            cluster=cluster,
            actor=self.actor,
            name=data.get("name"),
            type_slug=data.get("type"),
            capacity_units=data.get("capacity_units"),
        )
        if operation is None:
            return Response(s.ClusterSerializer(cluster).data)
        return _accepted(request, cluster, operation)

    @extend_schema(responses={202: s.AcceptedSerializer})
    def destroy(self, request, *args, **kwargs):
        cluster = self.get_object()
        operation = services.cluster_delete(cluster=cluster, actor=self.actor)
        cluster.refresh_from_db()
        return _accepted(request, cluster, operation)

    @extend_schema(request=None, responses={202: s.AcceptedSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request, *args, **kwargs):
        cluster = self.get_object()
        operation = services.cluster_retry(cluster=cluster, actor=self.actor)
        cluster.refresh_from_db()
        return _accepted(request, cluster, operation)


class OperationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """Asynchronous changes and how they ended."""

    model = Operation
    scope_map = read_write_scope_map("clusters")
    serializer_class = s.OperationSerializer

    def scope_queryset(self, queryset):
        return queryset.select_related("cluster")


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
