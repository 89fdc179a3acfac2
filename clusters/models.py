import secrets

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.functional import cached_property

from foundation import secretbox
from foundation.ids import new_public_id
from foundation.secretbox import SealedField
from tenants.models import AuditEvent, Organization
from tenants.scoping import TenantOwnedModel

from . import catalog
from .specs import Kind, Role

MB = 1_000_000
GB = 1_000_000_000


class Tier(models.Model):
    """A tier: what a cluster may do and what it costs. Operators edit these; prices are
    versioned by effective date (TierPrice)."""

    slug = models.SlugField(unique=True, choices=[(slug, slug) for slug in catalog.TIER_SLUGS])
    name = models.CharField(max_length=64)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=16, choices=[(k.value, k.value) for k in Kind])
    position = models.PositiveSmallIntegerField(default=0, help_text="Order in the catalog")
    offered = models.BooleanField(default=True, help_text="New clusters may use this tier")
    sla_percent = models.DecimalField(max_digits=6, decimal_places=3)
    # Limits of one cluster; for dedicated tiers, of one capacity unit (a cluster of N units
    # gets N times these).
    ingress_mbps = models.PositiveIntegerField("ingress (MB/s)")
    egress_mbps = models.PositiveIntegerField("egress (MB/s)")
    max_partitions = models.PositiveIntegerField()
    max_storage_gb = models.PositiveIntegerField(help_text="Pre-replication")
    max_retention_hours = models.PositiveIntegerField()
    max_connections = models.PositiveIntegerField()
    max_requests_per_second = models.PositiveIntegerField()
    max_credentials = models.PositiveIntegerField(help_text="Per cluster")
    min_capacity_units = models.PositiveSmallIntegerField(default=1)
    max_capacity_units = models.PositiveSmallIntegerField(default=1)
    # Dedicated broker sizing per capacity unit.
    brokers_per_unit = models.PositiveSmallIntegerField(default=0)
    broker_cpu_millicores = models.PositiveIntegerField(default=0)
    broker_memory_gb = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "slug"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_dedicated(self) -> bool:
        return self.kind == Kind.DEDICATED


class Dimension(models.TextChoices):
    """What is priced (TierPrice) and metered (billing's usage ledger): one name and one label
    each, wherever it shows. Quantities are integers in base units: hours, bytes, byte-hours,
    partition-hours."""

    CLUSTER_HOURS = "cluster_hours", "Cluster hours"
    CAPACITY_UNIT_HOURS = "capacity_unit_hours", "Capacity-unit hours"
    INGRESS_BYTES = "ingress_bytes", "Ingress (written)"
    EGRESS_BYTES = "egress_bytes", "Egress (read)"
    STORAGE_BYTE_HOURS = "storage_byte_hours", "Storage"
    PARTITION_HOURS = "partition_hours", "Partition hours"


# The dimensions billing meters into its ledger, in this order: traffic and storage from the
# cell's Prometheus, partition-hours from Sluice's record of topics, the time dimensions from
# its record of cluster sizes (ClusterSize).
METERED_DIMENSIONS: tuple[Dimension, ...] = (
    Dimension.INGRESS_BYTES,
    Dimension.EGRESS_BYTES,
    Dimension.STORAGE_BYTE_HOURS,
    Dimension.PARTITION_HOURS,
    Dimension.CLUSTER_HOURS,
    Dimension.CAPACITY_UNIT_HOURS,
)
# The dimensions billed by the time a cluster lives at a tier (and size), not by what it uses.
TIME_DIMENSIONS: tuple[Dimension, ...] = (Dimension.CLUSTER_HOURS, Dimension.CAPACITY_UNIT_HOURS)
METERED_DIMENSION_CHOICES = [(dimension.value, dimension.label) for dimension in METERED_DIMENSIONS]


class TierPrice(models.Model):
    """The price of one dimension of a tier from ``effective_from`` until the next version.
    Money is integer micro-dollars; ``per_units`` is how many base units the price is for
    (e.g. 10^9 bytes for a price per GB)."""

    tier = models.ForeignKey(Tier, on_delete=models.CASCADE, related_name="prices")
    dimension = models.CharField(max_length=32, choices=Dimension.choices)
    micros = models.BigIntegerField(help_text="Price in millionths of a US dollar")
    per_units = models.BigIntegerField(default=1)
    effective_from = models.DateTimeField()

    class Meta:
        ordering = ["tier", "dimension", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["tier", "dimension", "effective_from"], name="one_price_version"
            )
        ]

    def __str__(self) -> str:
        return f"{self.tier.slug} {self.dimension} from {self.effective_from:%Y-%m-%d}"


class Cell(models.Model):
    """One data-plane Kubernetes cluster in a region: where clusters are placed."""

    slug = models.SlugField(unique=True)
    cloud = models.CharField(max_length=16, default="aws")
    region = models.CharField(max_length=32, choices=[(r, r) for r in catalog.REGIONS])
    accepting = models.BooleanField(default=True, help_text="New clusters may be placed here")
    # How Sluice reaches the cell's Kubernetes API (clusters.cell_credentials): a kubeconfig,
    # sealed, never shown back; the fingerprint keys the driver's clients. None: the in-cluster
    # configuration (or SLUICE_KUBECONFIG).
    credentials_sealed = SealedField(null=True, editable=False)
    credentials_fingerprint = models.CharField(max_length=64, blank=True, editable=False)
    api_server = models.CharField(max_length=255, blank=True, editable=False)
    # The shared Kafka hosting this cell's serverless clusters, and where clients reach it.
    shared_kafka_namespace = models.CharField(max_length=63, default="sluice-shared")
    shared_kafka_name = models.CharField(max_length=63, default="shared")
    shared_bootstrap = models.CharField(max_length=255, blank=True)
    # Kafka applies client byte-rate quotas per broker: a tenant's rates are divided by this.
    # Serverless topics have three replicas, so a shared Kafka has at least three brokers.
    shared_kafka_brokers = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1)],
        help_text="Brokers of the shared Kafka; client byte-rate quotas are divided among them",
    )
    # Capacity: logical clusters on the shared Kafka, and dedicated capacity units.
    max_shared_clusters = models.PositiveIntegerField(default=1000)
    max_dedicated_units = models.PositiveIntegerField(default=50)
    max_shared_partitions = models.PositiveIntegerField(
        default=12_000,
        help_text="Partitions the shared Kafka may hold in all, before replication",
    )
    # The cell's Prometheus (scraping its brokers' JMX exporters, labelled as Strimzi's
    # PodMonitor does): where metering reads usage. Empty: the cell is not metered.
    prometheus_url = models.URLField(blank=True)

    class Meta:
        ordering = ["region", "slug"]

    def __str__(self) -> str:
        return f"{self.slug} ({self.cloud} {self.region})"


def default_max_clusters() -> int:
    return settings.SLUICE_DEFAULT_MAX_CLUSTERS


def default_max_partitions() -> int:
    return settings.SLUICE_DEFAULT_MAX_PARTITIONS


def default_max_credentials() -> int:
    return settings.SLUICE_DEFAULT_MAX_CREDENTIALS


def default_kafka_version() -> str:
    return settings.SLUICE_KAFKA_VERSION


class OrganizationQuota(models.Model):
    """An organization's limits. Absent, the defaults in settings apply; operators override."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="cluster_quota"
    )
    max_clusters = models.PositiveIntegerField(default=default_max_clusters)
    max_partitions = models.PositiveIntegerField(default=default_max_partitions)
    max_credentials = models.PositiveIntegerField(default=default_max_credentials)

    def __str__(self) -> str:
        return f"quota of {self.organization}"


def new_cluster_id() -> str:
    return new_public_id("kc")


def new_operation_id() -> str:
    return new_public_id("op")


def new_sealed_password() -> bytes:
    """A fresh password for one of Sluice's own principals, sealed (foundation.secretbox)."""
    return secretbox.seal(secrets.token_urlsafe(32))


def new_credential_id() -> str:
    return new_public_id("cred")


class ClusterState(models.TextChoices):
    REQUESTED = "requested"
    PROVISIONING = "provisioning"
    READY = "ready"
    UPDATING = "updating"
    DELETING = "deleting"
    DELETED = "deleted"
    FAILED = "failed"
    THROTTLED = "throttled"


class Cluster(TenantOwnedModel):
    public_id = models.CharField(max_length=32, unique=True, default=new_cluster_id)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=64)
    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="+")
    cell = models.ForeignKey(Cell, on_delete=models.PROTECT, related_name="clusters")
    capacity_units = models.PositiveSmallIntegerField(default=1)
    kafka_version = models.CharField(max_length=16, default=default_kafka_version)
    # Desired state's version: every change to what the data plane should be bumps it.
    generation = models.PositiveIntegerField(default=1)
    # What the reconciler last saw the data plane converge to.
    state = models.CharField(
        max_length=16, choices=ClusterState.choices, default=ClusterState.REQUESTED
    )
    observed_generation = models.PositiveIntegerField(default=0)
    bootstrap_servers = models.CharField(max_length=500, blank=True)
    # Whether the listener at bootstrap_servers speaks TLS: the protocol clients are told.
    bootstrap_tls = models.BooleanField(default=True)
    conditions = models.JSONField(default=list, blank=True)
    failure_reason = models.CharField(max_length=128, blank=True)
    failure_message = models.TextField(blank=True)
    reconcile_attempts = models.PositiveIntegerField(default=0)
    # Slowed down to the throttle floors (a spend cap reached, by billing): since when, and why.
    throttled_since = models.DateTimeField(null=True, blank=True)
    throttle_reason = models.CharField(max_length=200, blank=True)
    last_reconciled_at = models.DateTimeField(null=True, blank=True)
    # Sealed passwords of Sluice's own principals on the cluster's Kafka (specs.Role).
    observer_password_encrypted = SealedField(null=True, default=new_sealed_password)
    offsets_password_encrypted = SealedField(null=True, default=new_sealed_password)
    # One reconcile at a time: whoever set lease_holder (until lease_expires_at) runs it.
    lease_holder = models.CharField(max_length=32, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Fencing token: bumped by every acquisition of the lease. A run writes only while the row
    # still carries its token and its lease has not expired.
    lease_token = models.PositiveBigIntegerField(default=0)
    # The one reconcile queued for this cluster: its task carries this ticket and is due then.
    # Requests while it is set are coalesced into it; a task with another ticket is superseded.
    # Cleared when that task takes the lease.
    reconcile_ticket = models.CharField(max_length=32, blank=True, default="")
    reconcile_due_at = models.DateTimeField(null=True, blank=True)
    # A queued run found the lease held: its holder queues one more run when it ends.
    reconcile_wanted = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    delete_requested_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"],
                condition=Q(deleted_at__isnull=True),
                name="cluster_name_unique_while_alive",
            )
        ]
        indexes = [
            models.Index(fields=["state"], name="cluster_state"),
            # Placement counts the live clusters of a region's cells on every creation.
            models.Index(
                fields=["cell"], condition=Q(deleted_at__isnull=True), name="cluster_live_by_cell"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.public_id})"

    # Read through the relations, or annotated by a query that reads only these columns of them
    # (selectors.cluster_summaries: no related instance per row). An annotation of the same name
    # takes the place of the cached value.
    @cached_property
    def kind(self) -> str:
        return self.tier.kind

    @cached_property
    def tier_slug(self) -> str:
        return self.tier.slug

    @cached_property
    def region(self) -> str:
        return self.cell.region

    @property
    def is_dedicated(self) -> bool:
        return self.kind == Kind.DEDICATED

    def sealed_sluice_passwords(self) -> dict[Role, bytes]:
        """The sealed passwords of Sluice's own principals of the cluster, by role."""
        sealed = {
            Role.OBSERVER: self.observer_password_encrypted,
            Role.OFFSETS: self.offsets_password_encrypted,
        }
        return {role: bytes(value) for role, value in sealed.items() if value}


class CleanupPolicy(models.TextChoices):
    DELETE = "delete"
    COMPACT = "compact"
    COMPACT_DELETE = "compact,delete"


class Topic(TenantOwnedModel):
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="topics")
    name = models.CharField(max_length=249)  # Kafka's longest topic name
    partitions = models.PositiveIntegerField()
    replication_factor = models.PositiveSmallIntegerField(default=3)
    retention_ms = models.BigIntegerField()
    cleanup_policy = models.CharField(
        max_length=16, choices=CleanupPolicy.choices, default=CleanupPolicy.DELETE
    )
    configs = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "name"],
                condition=Q(deleted_at__isnull=True),
                name="topic_name_unique_while_alive",
            )
        ]

    def __str__(self) -> str:
        return self.name


class TopicPartitions(TenantOwnedModel):
    """How many partitions a topic had from ``since`` on: a row at creation and one at every
    increase, the record partition-hours are metered from (partitions are only ever added)."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    topic = models.ForeignKey(Topic, on_delete=models.PROTECT, related_name="partition_history")
    partitions = models.PositiveIntegerField()
    since = models.DateTimeField()

    class Meta(TenantOwnedModel.Meta):
        ordering = ["topic_id", "since"]
        indexes = [models.Index(fields=["topic", "since"], name="topic_partitions_since")]

    def __str__(self) -> str:
        return f"{self.topic_id}: {self.partitions} from {self.since:%Y-%m-%d %H:%M:%S}"


class ClusterSize(TenantOwnedModel):
    """A cluster's tier and capacity units from ``since`` on: a row at creation and one at every
    reshape, the record cluster-hours and capacity-unit-hours are metered from."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="size_history")
    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="+")
    capacity_units = models.PositiveSmallIntegerField()
    since = models.DateTimeField()

    class Meta(TenantOwnedModel.Meta):
        ordering = ["cluster_id", "since", "id"]
        indexes = [models.Index(fields=["cluster", "since"], name="cluster_size_since")]

    def __str__(self) -> str:
        return f"{self.cluster_id}: {self.capacity_units} x tier {self.tier_id} from {self.since}"


class Credential(TenantOwnedModel):
    """A SCRAM-SHA-512 principal on one cluster, with its client quotas."""

    public_id = models.CharField(max_length=32, unique=True, default=new_credential_id)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="credentials")
    name = models.CharField(max_length=100)
    # The KafkaUser's name, which Strimzi also puts in a label value: at most 63 characters.
    username = models.CharField(max_length=63, unique=True)
    # Sealed at rest (foundation.secretbox); the reconciler writes it into the Secret the
    # KafkaUser references. Shown to the tenant once, at creation and at each rotation.
    password_encrypted = SealedField()
    producer_byte_rate = models.BigIntegerField(null=True, blank=True)
    consumer_byte_rate = models.BigIntegerField(null=True, blank=True)
    request_percentage = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.username})"


class OperationState(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Operation(TenantOwnedModel):
    """One asynchronous change a caller asked for, and how it ended."""

    public_id = models.CharField(max_length=32, unique=True, default=new_operation_id)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="operations")
    kind = models.CharField(max_length=32)  # cluster.create, cluster.update, cluster.delete…
    state = models.CharField(
        max_length=16, choices=OperationState.choices, default=OperationState.PENDING
    )
    # Done when the cluster has converged to this generation (or is deleted, for deletes).
    target_generation = models.PositiveIntegerField()
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    requested_by = models.CharField(max_length=255)
    # The audit event of the request that opened it: what was changed, by name, before and
    # after (none for the system's own changes, such as a spend cap's throttle).
    audit_event = models.ForeignKey(
        AuditEvent, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["cluster", "state"], name="operation_cluster_state")]

    def __str__(self) -> str:
        return f"{self.kind} {self.public_id} ({self.state})"


class SimulatedObject(models.Model):
    """The simulated data plane's state: what it was asked to hold, and when each object turns
    Ready. Kept in the database so every web and worker process sees the same data plane."""

    cluster_public_id = models.CharField(max_length=32, db_index=True)
    kind = models.CharField(max_length=64)
    namespace = models.CharField(max_length=63, blank=True)
    name = models.CharField(max_length=253)
    manifest = models.JSONField()
    applied_generation = models.PositiveIntegerField()
    ready_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "namespace", "name"], name="one_simulated_object"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"
