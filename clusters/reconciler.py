"""The reconciler: make the data plane hold what the database says a cluster should be, and
record what the data plane reports back.

Level-triggered and idempotent: it reads the whole desired state each time, renders it, applies
it (server-side apply: applying twice changes nothing), reads status, and writes the result.
Interrupted after any write, the next run converges to the same state. One run per cluster at a
time, by a lease on the cluster row that any process can take with one conditional UPDATE
(SQLite and PostgreSQL alike); a crashed holder's lease expires.
"""

from __future__ import annotations

import logging
import math
import uuid
from datetime import timedelta
from enum import StrEnum

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from controlplane import secretbox
from tenants.audit import Actor, audit_record
from tenants.scoping import tenant_scope

from . import rendering, services
from .drivers import driver_for
from .models import GB, Cluster, ClusterState, ClusterType
from .specs import ClusterSpec, CredentialSpec, Kind, SharedKafka, Sizing, TopicSpec
from .tiers import limits_of

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)
REPLICATION = 3
SYSTEM = Actor(system="reconciler")


class Outcome(StrEnum):
    CONVERGED = "converged"  # ready at the desired generation, or deleted
    PENDING = "pending"  # applied; the data plane is still working: look again soon
    FAILED = "failed"  # the data plane reported a failure: waits for a retry or a change
    BUSY = "busy"  # another run holds the cluster
    GONE = "gone"  # no such cluster, or deleted long ago


# The desired state, as plain values -----------------------------------------------------------


def sizing_of(tier: ClusterType, units: int) -> Sizing | None:
    if tier.kind != Kind.DEDICATED:
        return None
    brokers = max(3, tier.brokers_per_unit * units)
    storage = math.ceil(tier.max_storage_gb * GB * units * REPLICATION / brokers)
    return Sizing(
        brokers=brokers,
        cpu_millicores=tier.broker_cpu_millicores,
        memory_bytes=tier.broker_memory_gb * 1024**3,
        storage_bytes=storage,
    )


def build_spec(cluster: Cluster) -> ClusterSpec:
    tier = cluster.cluster_type
    kind = Kind(tier.kind)
    replicas = REPLICATION
    topics = tuple(
        TopicSpec(
            name=topic.name,
            partitions=topic.partitions,
            replicas=replicas,
            config={
                **{k: str(v) for k, v in sorted(topic.configs.items())},
                "retention.ms": str(topic.retention_ms),
                "cleanup.policy": topic.cleanup_policy,
            },
        )
        for topic in cluster.topics.filter(deleted_at__isnull=True).order_by("name")
    )
    credentials = tuple(
        CredentialSpec(
            credential_id=credential.public_id,
            username=credential.username,
            password_secret=f"{rendering.resource_name(credential.public_id)}-scram",
            password=secretbox.unseal(credential.password_encrypted),
            producer_byte_rate=credential.producer_byte_rate,
            consumer_byte_rate=credential.consumer_byte_rate,
            request_percentage=credential.request_percentage,
        )
        for credential in cluster.credentials.filter(deleted_at__isnull=True).order_by("pk")
    )
    return ClusterSpec(
        cluster_id=cluster.public_id,
        organization_id=cluster.organization.public_id,
        name=cluster.name,
        kind=kind,
        tier=tier.slug,
        generation=cluster.generation,
        kafka_version=cluster.kafka_version,
        limits=limits_of(tier, cluster.capacity_units),
        sizing=sizing_of(tier, cluster.capacity_units),
        shared_kafka=SharedKafka(
            namespace=cluster.cell.shared_kafka_namespace,
            name=cluster.cell.shared_kafka_name,
            brokers=cluster.cell.shared_kafka_brokers,
        )
        if kind == Kind.SERVERLESS
        else None,
        topics=topics,
        credentials=credentials,
    )


# One run --------------------------------------------------------------------------------------


def reconcile(cluster_pk: int) -> Outcome:
    holder = uuid.uuid4().hex
    if not _take_lease(cluster_pk, holder):
        return Outcome.BUSY
    try:
        cluster = (
            Cluster.unscoped_all_tenants.select_related("cluster_type", "cell", "organization")
            .filter(pk=cluster_pk)
            .first()
        )
        if cluster is None or cluster.deleted_at is not None:
            return Outcome.GONE
        with tenant_scope(cluster.organization):
            return _reconcile(cluster)
    finally:
        _release_lease(cluster_pk, holder)


def _take_lease(cluster_pk: int, holder: str) -> bool:
    now = timezone.now()
    return bool(
        Cluster.unscoped_all_tenants.filter(pk=cluster_pk)
        .filter(Q(lease_holder="") | Q(lease_expires_at__lt=now))
        .update(lease_holder=holder, lease_expires_at=now + LEASE)
    )


def _release_lease(cluster_pk: int, holder: str) -> None:
    Cluster.unscoped_all_tenants.filter(pk=cluster_pk, lease_holder=holder).update(
        lease_holder="", lease_expires_at=None
    )


def _reconcile(cluster: Cluster) -> Outcome:
    spec = build_spec(cluster)
    driver = driver_for(cluster.cell)
    if cluster.delete_requested_at is not None:
        if not driver.delete(spec):
            _record(cluster, state=ClusterState.DELETING)
            return Outcome.PENDING
        _mark_deleted(cluster, spec.generation)
        return Outcome.CONVERGED
    # Only an earlier desired state can have left objects this one no longer renders, and a
    # generation is observed only after its prune succeeded (a failed prune fails the run).
    driver.apply(spec, prune=spec.generation > 1 and cluster.observed_generation < spec.generation)
    observation = driver.observe(spec)
    with transaction.atomic():
        current = Cluster.objects.select_for_update().get(pk=cluster.pk)
        current.conditions = observation.conditions
        current.last_reconciled_at = timezone.now()
        if observation.ready:
            current.state = ClusterState.READY
            current.observed_generation = max(current.observed_generation, spec.generation)
            current.bootstrap_servers = observation.bootstrap_servers
            current.bootstrap_tls = observation.bootstrap_tls
            current.failure_reason = current.failure_message = ""
            current.reconcile_attempts = 0
            if current.generation != spec.generation:  # changed while we worked
                current.state = ClusterState.UPDATING
            current.save()
            services.finish_operations(cluster=current)
            if current.generation != spec.generation:
                return Outcome.PENDING
            return Outcome.CONVERGED
        if observation.failed:
            current.state = ClusterState.FAILED
            current.failure_reason = observation.reason
            current.failure_message = observation.message
            current.save()
            services.finish_operations(
                cluster=current, failed=True, code=observation.reason, message=observation.message
            )
            return Outcome.FAILED
        current.state = (
            ClusterState.PROVISIONING if current.observed_generation == 0 else ClusterState.UPDATING
        )
        current.reconcile_attempts += 1
        current.save()
        return Outcome.PENDING


def _record(cluster: Cluster, *, state: str) -> None:
    Cluster.objects.filter(pk=cluster.pk).update(
        state=state, last_reconciled_at=timezone.now(), updated_at=timezone.now()
    )


@transaction.atomic
def _mark_deleted(cluster: Cluster, generation: int) -> None:
    now = timezone.now()
    current = Cluster.objects.select_for_update().get(pk=cluster.pk)
    current.state = ClusterState.DELETED
    current.deleted_at = now
    current.observed_generation = max(current.observed_generation, generation)
    current.bootstrap_servers = ""
    current.save()
    current.topics.filter(deleted_at__isnull=True).update(deleted_at=now)
    current.credentials.filter(deleted_at__isnull=True).update(deleted_at=now)
    services.finish_operations(cluster=current)
    audit_record(
        organization=current.organization, actor=SYSTEM, action="cluster.deleted", target=current
    )


def clusters_to_reconcile() -> list[int]:
    """Fleet-wide (beat): every live cluster, so drift is repaired and stragglers finish."""
    return list(
        Cluster.unscoped_all_tenants.filter(deleted_at__isnull=True).values_list("pk", flat=True)
    )
