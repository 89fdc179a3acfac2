from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import SAFE_METHODS, AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from foundation.api.secrets import SHOWN_ONCE_DESCRIPTION, ShownOnce
from foundation.api.validation import validated_data
from tenants.api.base import OrganizationScopedView, OrganizationScopedViewSet
from tenants.roles import read_write_scope_map

from .. import connection, consumer_groups, selectors, services
from ..models import Cluster, Credential, Operation, Topic
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
                "cluster_types": s.TierSerializer(selectors.catalog(), many=True).data,
            }
        )


NO_CAPACITY = OpenApiResponse(
    description="No cell of the region accepts the cluster now (`capacity_unavailable`)"
)
# Asked of the creation guards other apps register (clusters.guards): billing's payment policy.
PAYMENT_REQUIRED = OpenApiResponse(
    description="A payment method is needed first (`payment_method_required`): a tier charged "
    "by the hour, or the month's no-card allowance used up, without one on file"
)


def _accepted(request, cluster: Cluster, operation: Operation) -> Response:
    return _operation_response(
        request, cluster, "cluster", s.ClusterSerializer(cluster).data, operation
    )


class ClusterViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """Kafka clusters. Creating, reshaping and deleting are asynchronous: they answer 202 with
    the Operation to follow."""

    model = Cluster
    scope_map = read_write_scope_map("clusters")
    serializer_class = s.ClusterSerializer

    def scope_queryset(self, queryset):
        queryset = queryset.filter(deleted_at__isnull=True)
        if self.request.method in SAFE_METHODS:
            return selectors.cluster_summaries(queryset)
        return queryset.select_related("tier", "cell")  # changes need whole rows

    @extend_schema(
        request=s.ClusterCreateSerializer,
        responses={202: s.AcceptedSerializer, 402: PAYMENT_REQUIRED, 503: NO_CAPACITY},
    )
    def create(self, request, *args, **kwargs):
        data = validated_data(s.ClusterCreateSerializer, request.data)
        cluster, operation = services.cluster_create(
            organization=self.organization,
            actor=self.actor,
            name=data["name"],
            tier_slug=data["type"],
            region=data["region"],
            capacity_units=data.get("capacity_units"),
        )
        return _accepted(request, cluster, operation)

    @extend_schema(
        request=s.ClusterUpdateSerializer,
        responses={
            200: s.ClusterSerializer,
            202: s.AcceptedSerializer,
            402: PAYMENT_REQUIRED,
            503: NO_CAPACITY,
        },
        description="Rename (200), or resize / change type (202 with the Operation).",
    )
    def partial_update(self, request, *args, **kwargs):
        cluster = self.get_object()
        data = validated_data(s.ClusterUpdateSerializer, request.data)
        cluster, operation = services.cluster_update(
            cluster=cluster,
            actor=self.actor,
            name=data.get("name"),
            tier_slug=data.get("type"),
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

    @extend_schema(request=None, responses={202: s.AcceptedSerializer, 503: NO_CAPACITY})
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


class _ClusterChildViewSet(OrganizationScopedViewSet):
    """Objects that belong to the cluster named in the URL (``…/clusters/{cluster}/…``)."""

    abstract = True

    def scope_queryset(self, queryset):
        # The cluster in the URL must be one of this organization's live clusters: any other
        # id is 404, for lists too, rather than an empty page that confirms nothing.
        return queryset.filter(cluster=self.parent_cluster()).select_related("cluster__tier")

    def parent_cluster(self) -> Cluster:
        cluster = selectors.live_cluster(
            organization=self.organization, public_id=self.kwargs["cluster"]
        )
        if cluster is None:
            raise NotFound()
        return cluster


def _operation_location(request, organization, operation: Operation) -> dict:
    path = f"/api/v1/orgs/{organization.public_id}/operations/{operation.public_id}/"
    return {"Location": request.build_absolute_uri(path)}


def _operation_response(
    request, cluster: Cluster, key: str, body: dict, operation, *, secret_fields=()
) -> Response:
    payload = {key: body, "operation": s.OperationSerializer(operation).data}
    headers = _operation_location(request, cluster.organization, operation)
    if secret_fields:
        return ShownOnce(payload, secret_fields=secret_fields, status=202, headers=headers)
    return Response(payload, status=202, headers=headers)


class TopicViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _ClusterChildViewSet):
    """A cluster's topics, by name. Changes reach Kafka asynchronously (202 + Operation)."""

    model = Topic
    scope_map = read_write_scope_map("clusters")
    serializer_class = s.TopicSerializer
    lookup_field = "name"
    lookup_url_kwarg = "name"
    lookup_value_regex = "[a-zA-Z0-9._-]+"
    ordering = ("name", "id")

    def scope_queryset(self, queryset):
        return super().scope_queryset(queryset).filter(deleted_at__isnull=True)

    @extend_schema(
        request=s.TopicCreateSerializer,
        responses={202: s.TopicAcceptedSerializer, 402: PAYMENT_REQUIRED},
    )
    def create(self, request, *args, **kwargs):
        cluster = self.parent_cluster()
        data = validated_data(s.TopicCreateSerializer, request.data)
        topic, operation = services.topic_create(cluster=cluster, actor=self.actor, **data)
        return _operation_response(
            request, cluster, "topic", s.TopicSerializer(topic).data, operation
        )

    @extend_schema(
        request=s.TopicUpdateSerializer,
        responses={200: s.TopicSerializer, 202: s.TopicAcceptedSerializer},
        description="202 with the Operation that applies the change; 200 with the topic when "
        "the request changes nothing.",
    )
    def partial_update(self, request, *args, **kwargs):
        topic = self.get_object()
        data = validated_data(s.TopicUpdateSerializer, request.data)
        topic, operation = services.topic_update(topic=topic, actor=self.actor, **data)
        if operation is None:
            return Response(s.TopicSerializer(topic).data)
        return _operation_response(
            request, topic.cluster, "topic", s.TopicSerializer(topic).data, operation
        )

    @extend_schema(responses={202: s.OperationSerializer})
    def destroy(self, request, *args, **kwargs):
        topic = self.get_object()
        operation = services.topic_delete(topic=topic, actor=self.actor)
        return Response(
            s.OperationSerializer(operation).data,
            status=202,
            headers=_operation_location(request, self.organization, operation),
        )


class CredentialViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _ClusterChildViewSet):
    """SCRAM-SHA-512 credentials of a cluster, with their client quotas. The password is shown
    once, when the credential is created or rotated."""

    model = Credential
    scope_map = read_write_scope_map("clusters")
    serializer_class = s.CredentialSerializer

    def scope_queryset(self, queryset):
        return super().scope_queryset(queryset).filter(deleted_at__isnull=True)

    @extend_schema(
        request=s.CredentialCreateSerializer,
        responses={202: s.CredentialAcceptedSerializer},
        description=f"A new credential and its password. {SHOWN_ONCE_DESCRIPTION}",
    )
    def create(self, request, *args, **kwargs):
        cluster = self.parent_cluster()
        data = validated_data(s.CredentialCreateSerializer, request.data)
        credential, password, operation = services.credential_create(
            cluster=cluster, actor=self.actor, **data
        )
        return self._with_password(request, cluster, credential, password, operation)

    @extend_schema(
        request=None,
        responses={202: s.CredentialAcceptedSerializer},
        description=f"A new password for the credential. {SHOWN_ONCE_DESCRIPTION}",
    )
    @action(detail=True, methods=["post"])
    def rotate(self, request, *args, **kwargs):
        credential = self.get_object()
        credential, password, operation = services.credential_rotate(
            credential=credential, actor=self.actor
        )
        return self._with_password(request, credential.cluster, credential, password, operation)

    @extend_schema(
        request=s.CredentialQuotaSerializer,
        responses={202: s.CredentialChangedSerializer},
        description="Change the credential's client quotas (null removes one).",
    )
    def partial_update(self, request, *args, **kwargs):
        credential = self.get_object()
        data = validated_data(s.CredentialQuotaSerializer, request.data)
        credential, operation = services.credential_update_quotas(
            credential=credential, actor=self.actor, **data
        )
        return _operation_response(
            request,
            credential.cluster,
            "credential",
            s.CredentialSerializer(credential).data,
            operation,
        )

    @extend_schema(responses={202: s.OperationSerializer})
    def destroy(self, request, *args, **kwargs):
        credential = self.get_object()
        operation = services.credential_delete(credential=credential, actor=self.actor)
        return Response(
            s.OperationSerializer(operation).data,
            status=202,
            headers=_operation_location(request, self.organization, operation),
        )

    def _with_password(self, request, cluster, credential, password, operation) -> Response:
        credential.password = password
        credential.sasl_jaas_config = connection.sasl_jaas_config(credential.username, password)
        body = s.CredentialWithPasswordSerializer(credential).data
        return _operation_response(
            request,
            cluster,
            "credential",
            body,
            operation,
            secret_fields=("credential.password", "credential.sasl_jaas_config"),
        )


GROUPS_UNAVAILABLE = OpenApiResponse(
    description="No Kafka to ask (`consumer_groups_unavailable`): the simulated data plane, or "
    "a cluster not ready yet"
)
KAFKA_UNREACHABLE = OpenApiResponse(
    description="The cluster's Kafka did not answer in time (`kafka_unreachable`)"
)


class _ConsumerGroupView(OrganizationScopedView):
    """A cluster's consumer groups, read live from its Kafka by Sluice's observer principal."""

    abstract = True
    scope_map = read_write_scope_map("clusters")

    def cluster(self) -> Cluster:
        cluster = selectors.live_cluster(
            organization=self.organization, public_id=self.kwargs["cluster"]
        )
        if cluster is None:
            raise NotFound()
        return cluster


class ConsumerGroupListView(_ConsumerGroupView):
    serializer_class = s.ConsumerGroupListSerializer

    @extend_schema(
        operation_id="v1_orgs_clusters_consumer_groups_list",
        responses={
            200: s.ConsumerGroupListSerializer,
            409: GROUPS_UNAVAILABLE,
            503: KAFKA_UNREACHABLE,
        },
    )
    def get(self, request, *args, **kwargs):
        groups = consumer_groups.list_groups(self.cluster())
        return Response({"results": s.ConsumerGroupSummarySerializer(groups, many=True).data})


class ConsumerGroupView(_ConsumerGroupView):
    serializer_class = s.ConsumerGroupSerializer

    @extend_schema(
        operation_id="v1_orgs_clusters_consumer_groups_retrieve",
        responses={200: s.ConsumerGroupSerializer, 409: GROUPS_UNAVAILABLE, 503: KAFKA_UNREACHABLE},
    )
    def get(self, request, *args, **kwargs):
        group = consumer_groups.get_group(self.cluster(), self.kwargs["group"])
        return Response(s.ConsumerGroupSerializer(group).data)


class ConsumerGroupResetView(_ConsumerGroupView):
    serializer_class = s.OffsetResetSerializer  # also what OPTIONS describes

    @extend_schema(
        request=s.OffsetResetSerializer,
        responses={
            200: s.OffsetResetResultSerializer,
            409: OpenApiResponse(
                description="The group has consumers (`conflict`: offsets are reset only for an "
                "inactive group), or no Kafka to ask (`consumer_groups_unavailable`)"
            ),
            503: KAFKA_UNREACHABLE,
        },
        description="Move an inactive group's committed offsets to the earliest or latest "
        "offset of each partition, or to the first record at a time. Audited.",
    )
    def post(self, request, *args, **kwargs):
        cluster = self.cluster()  # another organization's cluster is 404, whatever the body
        data = validated_data(s.OffsetResetSerializer, request.data)
        moves = services.consumer_group_reset_offsets(
            cluster=cluster, actor=self.actor, group=self.kwargs["group"], **data
        )
        return Response(
            s.OffsetResetResultSerializer({"group": self.kwargs["group"], "offsets": moves}).data
        )
