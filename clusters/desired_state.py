"""A cluster's desired state as plain values (clusters.specs): what the database says the data
plane should hold, built from its row, its tier, its live topics and credentials. The reconciler
renders and applies it for one cluster; a cell's resync (clusters.resync) builds it for every
cluster of the cell from rows it loaded at once."""

from __future__ import annotations

import math
from collections.abc import Iterable

from django.conf import settings

from foundation import secretbox

from . import naming
from .models import GB, Cluster, Credential, Tier, Topic
from .specs import (
    ClusterSpec,
    ControlPlaneAccount,
    CredentialSpec,
    Kind,
    SharedKafka,
    Sizing,
    TopicSpec,
)
from .tiers import limits_of, throttle_floors

REPLICATION = 3


def sizing_of(tier: Tier, units: int) -> Sizing | None:
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


class CredentialUnreadable(Exception):
    """A credential's sealed password opens with no key of the ring: its data-plane Secret
    cannot be written until the credential is rotated (a new password, sealed afresh)."""

    reason = "CredentialUnreadable"

    def __init__(self, credential_ids: list[str]) -> None:
        self.credential_ids = credential_ids
        super().__init__(
            f"The password of {', '.join(credential_ids)} opens with no key of "
            f"{secretbox.SETTING}: add back the key that sealed it, or rotate the credential"
        )


def build_spec(
    cluster: Cluster,
    *,
    with_passwords: bool = True,
    topics: Iterable[Topic] | None = None,
    credentials: Iterable[Credential] | None = None,
) -> ClusterSpec:
    """The desired state. ``with_passwords=False`` leaves the credentials' passwords out (what
    deletion needs: it never opens a sealed value). With passwords, a credential no key opens
    raises CredentialUnreadable. ``topics`` and ``credentials``, the cluster's live ones in
    order, are given by a caller that loaded a whole cell's at once (clusters.resync)."""
    if topics is None:
        topics = cluster.topics.filter(deleted_at__isnull=True).order_by("name")
    if credentials is None:
        credentials = cluster.credentials.filter(deleted_at__isnull=True).order_by("pk")
    tier = cluster.tier
    kind = Kind(tier.kind)
    replicas = REPLICATION
    topic_specs = tuple(
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
        for topic in topics
    )
    credential_specs = []
    unreadable = []
    for credential in credentials:
        password = ""
        if with_passwords:
            try:
                password = secretbox.unseal(credential.password_encrypted)
            except secretbox.Unreadable:
                unreadable.append(credential.public_id)
        credential_specs.append(
            CredentialSpec(
                credential_id=credential.public_id,
                username=credential.username,
                password_secret=naming.password_secret_name(credential.public_id),
                password=password,
                producer_byte_rate=credential.producer_byte_rate,
                consumer_byte_rate=credential.consumer_byte_rate,
                request_percentage=credential.request_percentage,
            )
        )
    sluice_principals = []
    for role, sealed in cluster.sealed_sluice_passwords().items():
        password = ""
        if with_passwords:
            try:
                password = secretbox.unseal(sealed)
            except secretbox.Unreadable:
                unreadable.append(naming.sluice_username(cluster.public_id, role))
        sluice_principals.append(
            CredentialSpec(
                # Sluice's principals are scoped by the cluster itself.
                credential_id=cluster.public_id,
                username=naming.sluice_username(cluster.public_id, role),
                password_secret=naming.sluice_password_secret_name(cluster.public_id, role),
                password=password,
                role=role,
            )
        )
    if unreadable:
        raise CredentialUnreadable(unreadable)
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
        topics=topic_specs,
        credentials=tuple(credential_specs),
        sluice_principals=tuple(sluice_principals),
        throttle=throttle_floors() if cluster.throttled_since is not None else None,
        control_plane=ControlPlaneAccount(
            namespace=settings.SLUICE_CONTROL_PLANE_ACCOUNT_NAMESPACE,
            name=settings.SLUICE_CONTROL_PLANE_ACCOUNT_NAME,
        ),
    )
