from datetime import UTC, datetime

from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from foundation.api.fields import NameField, PatternValidator

from .. import catalog, connection, validation
from ..models import Cluster, ClusterState, Credential, Operation, Tier, TierPrice, Topic
from ..specs import Kind


class TierPriceSerializer(serializers.ModelSerializer):
    unit = serializers.SerializerMethodField()
    usd = serializers.SerializerMethodField(help_text="The price in US dollars, for reading")

    class Meta:
        model = TierPrice
        fields = ["dimension", "micros", "per_units", "unit", "usd", "effective_from"]

    def get_unit(self, price: TierPrice) -> str:
        return {
            "cluster_hours": "cluster-hour",
            "capacity_unit_hours": "capacity-unit-hour",
            "ingress_bytes": "GB written" if price.per_units == 10**9 else "bytes written",
            "egress_bytes": "GB read" if price.per_units == 10**9 else "bytes read",
            "storage_byte_hours": "GB-hour stored",
            "partition_hours": "partition-hour",
        }.get(price.dimension, price.dimension)

    def get_usd(self, price: TierPrice) -> str:
        return f"{price.micros / 1_000_000:.6f}".rstrip("0").rstrip(".")


# The schema keeps the name clients know it by, as the catalog keeps its `cluster_types` key.
@extend_schema_serializer(component_name="ClusterType")
class TierSerializer(serializers.ModelSerializer):
    prices = TierPriceSerializer(source="current_prices", many=True, read_only=True)
    limits_per = serializers.SerializerMethodField()

    class Meta:
        model = Tier
        fields = [
            "slug",
            "name",
            "description",
            "kind",
            "sla_percent",
            "limits_per",
            "ingress_mbps",
            "egress_mbps",
            "max_partitions",
            "max_storage_gb",
            "max_retention_hours",
            "max_connections",
            "max_requests_per_second",
            "max_credentials",
            "min_capacity_units",
            "max_capacity_units",
            "prices",
        ]

    def get_limits_per(self, tier: Tier) -> str:
        return "capacity unit" if tier.kind == Kind.DEDICATED else "cluster"


class CatalogSerializer(serializers.Serializer):
    regions = serializers.ListField(child=serializers.CharField())
    cluster_types = TierSerializer(many=True)


class OperationSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id", read_only=True)
    cluster = serializers.CharField(source="cluster.public_id", read_only=True)
    error = serializers.SerializerMethodField()

    class Meta:
        model = Operation
        fields = [
            "id",
            "kind",
            "cluster",
            "state",
            "target_generation",
            "error",
            "requested_by",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.DictField(child=serializers.CharField(), allow_null=True))
    def get_error(self, operation: Operation):
        if not operation.error_code and not operation.error_message:
            return None
        return {"code": operation.error_code, "message": operation.error_message}


class ClusterSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id", read_only=True)
    type = serializers.CharField(source="tier_slug", read_only=True)
    region = serializers.CharField(read_only=True)
    failure = serializers.SerializerMethodField()
    throttle = serializers.SerializerMethodField()
    connection = serializers.SerializerMethodField()

    class Meta:
        model = Cluster
        fields = [
            "id",
            "name",
            "type",
            "region",
            "capacity_units",
            "kafka_version",
            "state",
            "generation",
            "observed_generation",
            "bootstrap_servers",
            "conditions",
            "failure",
            "throttle",
            "connection",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.DictField(child=serializers.CharField(), allow_null=True))
    def get_failure(self, cluster: Cluster):
        if cluster.state != ClusterState.FAILED:
            return None
        return {
            "reason": cluster.failure_reason,
            "message": cluster.failure_message,
            "retry": "POST …/clusters/{id}/retry/ to try again",
        }

    @extend_schema_field(serializers.DictField(child=serializers.CharField(), allow_null=True))
    def get_throttle(self, cluster: Cluster):
        """Why the cluster is slowed down (a spend cap reached), or null."""
        if cluster.throttled_since is None:
            return None
        return {"since": _timestamp(cluster.throttled_since), "reason": cluster.throttle_reason}

    @extend_schema_field(serializers.DictField(child=serializers.CharField(), allow_null=True))
    def get_connection(self, cluster: Cluster):
        return connection.connection_details(cluster)

    def to_representation(self, cluster: Cluster) -> dict:
        # Pages of clusters are this API's hottest read: built in one go rather than field by
        # field (about a third of a list request's time). A test holds it equal to the
        # field-by-field representation of the fields declared above.
        return {
            "id": cluster.public_id,
            "name": cluster.name,
            "type": cluster.tier_slug,
            "region": cluster.region,
            "capacity_units": cluster.capacity_units,
            "kafka_version": cluster.kafka_version,
            "state": cluster.state,
            "generation": cluster.generation,
            "observed_generation": cluster.observed_generation,
            "bootstrap_servers": cluster.bootstrap_servers,
            "conditions": cluster.conditions,
            "failure": self.get_failure(cluster),
            "throttle": self.get_throttle(cluster),
            "connection": self.get_connection(cluster),
            "created_at": _timestamp(cluster.created_at),
            "updated_at": _timestamp(cluster.updated_at),
        }


def _timestamp(value: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, as DRF writes timestamps (the API's time zone is UTC)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


MAX_CAPACITY_UNITS = max(entry.get("max_capacity_units", 1) for entry in catalog.CATALOG)
CAPACITY_UNITS_HELP = (
    "Dedicated clusters only (default: the tier's minimum); the tier's "
    "`min_capacity_units`..`max_capacity_units` in the catalog. Other tiers: 1 or absent."
)
TYPE_HELP = "A tier's slug (`GET /api/v1/catalog/`); one not offered at the moment is a 409."


class ClusterCreateSerializer(serializers.Serializer):
    name = NameField(max_length=64)
    type = serializers.ChoiceField(choices=catalog.TIER_SLUGS, help_text=TYPE_HELP)
    region = serializers.ChoiceField(
        choices=catalog.REGIONS,
        help_text="A region of the catalog; one where no cell accepts clusters now (those that "
        "do are in `GET /api/v1/catalog/`) is a 503 `capacity_unavailable`.",
    )
    capacity_units = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_CAPACITY_UNITS, help_text=CAPACITY_UNITS_HELP
    )


class ClusterUpdateSerializer(serializers.Serializer):
    name = NameField(max_length=64, required=False)
    type = serializers.ChoiceField(choices=catalog.TIER_SLUGS, required=False, help_text=TYPE_HELP)
    capacity_units = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_CAPACITY_UNITS, help_text=CAPACITY_UNITS_HELP
    )


class AcceptedSerializer(serializers.Serializer):
    cluster = ClusterSerializer()
    operation = OperationSerializer()


class TopicSerializer(serializers.ModelSerializer):
    kafka_name = serializers.SerializerMethodField(help_text="The topic's name in Kafka")

    class Meta:
        model = Topic
        fields = [
            "name",
            "kafka_name",
            "partitions",
            "replication_factor",
            "retention_ms",
            "cleanup_policy",
            "configs",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_kafka_name(self, topic: Topic) -> str:
        return connection.kafka_topic_name(topic.cluster, topic.name)


MAX_RETENTION_MS = max(entry["max_retention_hours"] for entry in catalog.CATALOG) * 3_600_000
RETENTION_HELP = (
    f"At least {validation.MIN_RETENTION_MS} and at most the tier's `max_retention_hours` "
    "(in milliseconds)."
)
PARTITIONS_HELP = "At most the tier's `max_partitions` and the organization's partition quota."


@extend_schema_field(
    {
        "type": "object",
        "description": "Kafka topic configs a tenant may set, as strings; the numeric ones "
        "within Kafka's and the tier's bounds.",
        "properties": {
            key: {"type": "string", **rule} for key, rule in validation.TOPIC_CONFIG_SCHEMAS.items()
        },
        "additionalProperties": False,
    }
)
class TopicConfigsField(serializers.DictField):
    child = serializers.CharField(trim_whitespace=False)


class TopicCreateSerializer(serializers.Serializer):
    name = serializers.CharField(
        max_length=validation.KAFKA_TOPIC_NAME_MAX,
        trim_whitespace=False,
        validators=[PatternValidator(validation.TOPIC_NAME_PATTERN)],
        help_text="Letters, digits, '.', '_' and '-'; not '.' or '..', not starting with '__'. "
        "On a serverless cluster, at most 249 characters less its id and a dot.",
    )
    partitions = serializers.IntegerField(min_value=1, max_value=100_000, help_text=PARTITIONS_HELP)
    retention_ms = serializers.IntegerField(
        required=False,
        min_value=validation.MIN_RETENTION_MS,
        max_value=MAX_RETENTION_MS,
        help_text=RETENTION_HELP,
    )
    cleanup_policy = serializers.ChoiceField(
        choices=["delete", "compact", "compact,delete"], default="delete"
    )
    configs = TopicConfigsField(required=False)


class TopicUpdateSerializer(serializers.Serializer):
    partitions = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=100_000,
        help_text="At least the current count (partitions are only added). " + PARTITIONS_HELP,
    )
    retention_ms = serializers.IntegerField(
        required=False,
        min_value=validation.MIN_RETENTION_MS,
        max_value=MAX_RETENTION_MS,
        help_text=RETENTION_HELP,
    )
    configs = TopicConfigsField(required=False)


class TopicAcceptedSerializer(serializers.Serializer):
    topic = TopicSerializer()
    operation = OperationSerializer()


class CredentialSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id", read_only=True)

    class Meta:
        model = Credential
        fields = [
            "id",
            "name",
            "username",
            "producer_byte_rate",
            "consumer_byte_rate",
            "request_percentage",
            "created_at",
            "rotated_at",
        ]
        read_only_fields = fields


class CredentialWithPasswordSerializer(CredentialSerializer):
    password = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="Shown once: Sluice cannot show it again. Rotate to replace it. Null in an "
        "Idempotency-Key replay, which withholds it (Secret-Withheld header).",
    )
    sasl_jaas_config = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="Holds the password: shown once, like it; null in a replay.",
    )

    class Meta(CredentialSerializer.Meta):
        fields = [*CredentialSerializer.Meta.fields, "password", "sasl_jaas_config"]
        read_only_fields = fields


class CredentialCreateSerializer(serializers.Serializer):
    name = NameField(max_length=100)
    producer_byte_rate = serializers.IntegerField(required=False, min_value=1)
    consumer_byte_rate = serializers.IntegerField(required=False, min_value=1)
    request_percentage = serializers.IntegerField(required=False, min_value=1, max_value=100)


class CredentialQuotaSerializer(serializers.Serializer):
    producer_byte_rate = serializers.IntegerField(required=False, min_value=1, allow_null=True)
    consumer_byte_rate = serializers.IntegerField(required=False, min_value=1, allow_null=True)
    request_percentage = serializers.IntegerField(
        required=False, min_value=1, max_value=100, allow_null=True
    )


class CredentialAcceptedSerializer(serializers.Serializer):
    credential = CredentialWithPasswordSerializer()
    operation = OperationSerializer()


class CredentialChangedSerializer(serializers.Serializer):
    """A change that keeps the password: the credential without it."""

    credential = CredentialSerializer()
    operation = OperationSerializer()


# Consumer groups (read live from the cluster's Kafka; clusters.consumer_groups) ----------------

GROUP_STATES = ["stable", "empty", "rebalancing", "dead", "unknown"]


class ConsumerGroupSummarySerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The group's id as the cluster's clients use it")
    kafka_name = serializers.CharField(help_text="The group's id in Kafka")
    state = serializers.ChoiceField(
        choices=GROUP_STATES, help_text="`empty`: no consumer in it (its offsets may be reset)"
    )


class ConsumerGroupListSerializer(serializers.Serializer):
    results = ConsumerGroupSummarySerializer(many=True)


class AssignmentSerializer(serializers.Serializer):
    topic = serializers.CharField()
    partition = serializers.IntegerField()


class ConsumerGroupMemberSerializer(serializers.Serializer):
    member_id = serializers.CharField()
    client_id = serializers.CharField()
    host = serializers.CharField()
    assignments = AssignmentSerializer(many=True)


class PartitionLagSerializer(serializers.Serializer):
    topic = serializers.CharField()
    partition = serializers.IntegerField()
    committed_offset = serializers.IntegerField(
        allow_null=True, help_text="null: the group has committed no offset here"
    )
    end_offset = serializers.IntegerField(help_text="The offset the next record will get")
    lag = serializers.IntegerField(allow_null=True, help_text="Records not yet consumed")


class ConsumerGroupSerializer(ConsumerGroupSummarySerializer):
    members = ConsumerGroupMemberSerializer(many=True)
    partitions = PartitionLagSerializer(many=True)
    total_lag = serializers.IntegerField()


class OffsetResetSerializer(serializers.Serializer):
    to = serializers.ChoiceField(choices=["earliest", "latest", "timestamp"])
    timestamp = serializers.DateTimeField(
        required=False, help_text="With `to=timestamp`: the first record at or after it"
    )
    topic = serializers.CharField(
        required=False, max_length=249, help_text="Only this topic's partitions"
    )


class OffsetMoveSerializer(serializers.Serializer):
    topic = serializers.CharField()
    partition = serializers.IntegerField()
    before = serializers.IntegerField(allow_null=True)
    after = serializers.IntegerField()


class OffsetResetResultSerializer(serializers.Serializer):
    group = serializers.CharField()
    offsets = OffsetMoveSerializer(many=True)
