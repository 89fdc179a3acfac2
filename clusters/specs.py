"""What the data plane is asked for: plain, immutable values made from the database by the
reconciler and turned into Kubernetes manifests by ``clusters.rendering``. No ORM here, so the
rendering stays a pure function, testable on its own."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class InvalidSpec(ValueError):
    """The spec cannot be rendered safely (a name Kubernetes or a shared Kafka would reject,
    or one that could collide with another cluster's)."""


class Kind(StrEnum):
    SERVERLESS = "serverless"  # a logical cluster on a cell's shared Kafka
    DEDICATED = "dedicated"  # a Kafka of its own, in a namespace of its own


@dataclass(frozen=True)
class Limits:
    """The effective limits of one cluster (its tier's, times its capacity units)."""

    ingress_bytes_per_second: int
    egress_bytes_per_second: int
    max_partitions: int
    max_storage_bytes: int
    max_retention_ms: int
    max_connections: int
    # Share of broker request-handler and network threads, in percent (Kafka's
    # request_percentage quota); per credential on serverless.
    request_percentage: int
    # Partition creations/deletions per second (Kafka's controller_mutation_rate).
    controller_mutation_rate: float

    @property
    def max_partition_retention_bytes(self) -> int:
        """The most one partition of a shared-Kafka cluster may keep (``retention.bytes``): the
        storage limit shared out over the partition limit, so that however its partitions are
        spread over topics, the cluster never keeps more than its storage limit."""
        return self.max_storage_bytes // max(1, self.max_partitions)


@dataclass(frozen=True)
class Sizing:
    """Broker sizing of a dedicated cluster, from its tier and capacity units."""

    brokers: int
    cpu_millicores: int  # per broker
    memory_bytes: int  # per broker
    storage_bytes: int  # per broker volume
    controllers: int = 3  # KRaft controller nodes


@dataclass(frozen=True)
class SharedKafka:
    """Where a cell's serverless clusters live: its shared Strimzi Kafka."""

    namespace: str
    name: str  # the Kafka resource's name (the strimzi.io/cluster label of users and topics)
    # Kafka enforces client byte-rate quotas on each broker separately, so a principal's rate
    # is divided by this to bound what it gets from all of them together.
    brokers: int = 3


@dataclass(frozen=True)
class ControlPlaneAccount:
    """The ServiceAccount Sluice acts as in a cell's Kubernetes API (deploy/dataplane/): each
    dedicated namespace binds it the ClusterRole ``sluice-tenant``."""

    namespace: str = "sluice-system"
    name: str = "sluice-control-plane"


@dataclass(frozen=True)
class ThrottleFloors:
    """The rates every principal of a throttled cluster gets (cluster-wide, like a limit)."""

    producer_bytes_per_second: int
    consumer_bytes_per_second: int
    controller_mutation_rate: float


@dataclass(frozen=True)
class TopicSpec:
    name: str  # as the tenant named it; on serverless the Kafka topic is "<cluster_id>.<name>"
    partitions: int
    replicas: int
    config: dict[str, str] = field(default_factory=dict)  # Kafka topic configs, validated


class Role(StrEnum):
    """Whose a principal is: a tenant's credential, or one of Sluice's own per cluster."""

    TENANT = "tenant"
    # Sluice's read-only view of consumer groups: describes groups, reads committed offsets.
    OBSERVER = "observer"
    # Sluice's only principal that may move a group's offsets (a reset the tenant asked for).
    OFFSETS = "offsets"


@dataclass(frozen=True)
class CredentialSpec:
    """A SCRAM-SHA-512 principal. Its password is in a Kubernetes Secret Sluice writes
    (``password_secret``/``password_key``); the KafkaUser references it."""

    credential_id: str  # cred_…
    username: str
    password_secret: str
    password: str = field(default="", repr=False)  # written into password_secret
    password_key: str = "password"  # noqa: S105 - the Secret's key, not a password
    # Quotas of this principal; None leaves Kafka's default.
    producer_byte_rate: int | None = None
    consumer_byte_rate: int | None = None
    request_percentage: int | None = None
    controller_mutation_rate: float | None = None
    role: Role = Role.TENANT


@dataclass(frozen=True)
class ClusterSpec:
    cluster_id: str  # kc_…
    organization_id: str  # org_…
    name: str
    kind: Kind
    tier: str  # the tier's slug
    generation: int
    kafka_version: str
    limits: Limits
    sizing: Sizing | None  # dedicated only
    shared_kafka: SharedKafka | None  # serverless only
    topics: tuple[TopicSpec, ...] = ()
    credentials: tuple[CredentialSpec, ...] = ()
    # Sluice's own principals on the cluster's Kafka (roles OBSERVER and OFFSETS).
    sluice_principals: tuple[CredentialSpec, ...] = ()
    # A spend cap reached: on a shared Kafka, every principal gets these floors.
    throttle: ThrottleFloors | None = None
    # Who is given the rights to write in a dedicated cluster's namespace.
    control_plane: ControlPlaneAccount = ControlPlaneAccount()
