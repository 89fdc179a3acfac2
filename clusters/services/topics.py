"""Writes of a cluster's topics: each one is a new generation of the cluster (lifecycle)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Sum

from foundation.errors import Conflict, InvalidInput
from tenants.audit import Actor, audit_record, snapshot

from .. import lifecycle, validation
from ..guards import PARTITIONS_ADD, TOPIC_CREATE, Creation, check_creation
from ..models import Cluster, Operation, Topic, TopicPartitions
from .clusters import retire_item, writable_cluster, writable_item
from .quotas import exceeded, locked_quota


def _check_partitions(cluster: Cluster, *, adding: int) -> None:
    """The cluster's tier limit and the organization's quota, both; the caller holds the
    organization's quota lock, so concurrent requests cannot both take the last partitions."""
    quota = locked_quota(cluster.organization)
    live = Topic.objects.filter(deleted_at__isnull=True)
    in_cluster = live.filter(cluster=cluster).aggregate(n=Sum("partitions"))["n"] or 0
    tier_limit = cluster.tier.max_partitions * cluster.capacity_units
    if in_cluster + adding > tier_limit:
        raise exceeded(
            limit="partitions_per_cluster", maximum=tier_limit, current=in_cluster, requested=adding
        )
    in_org = live.filter(organization=cluster.organization).aggregate(n=Sum("partitions"))["n"] or 0
    if in_org + adding > quota.max_partitions:
        raise exceeded(
            limit="partitions", maximum=quota.max_partitions, current=in_org, requested=adding
        )


@transaction.atomic
def topic_create(
    *,
    cluster: Cluster,
    actor: Actor,
    name: str,
    partitions: int,
    retention_ms: int | None = None,
    cleanup_policy: str = "delete",
    configs: dict | None = None,
) -> tuple[Topic, Operation]:
    cluster = writable_cluster(cluster)
    name = validation.topic_name(cluster, name)
    check_creation(Creation.within(cluster, TOPIC_CREATE))
    if partitions < 1:
        raise InvalidInput("A topic has at least one partition", field="partitions")
    cleanup_policy = validation.cleanup_policy(cleanup_policy)
    retention = validation.retention_ms(cluster, retention_ms)
    cleaned = validation.retention_bytes(cluster, validation.topic_configs(configs))
    _check_partitions(cluster, adding=partitions)
    if Topic.objects.filter(cluster=cluster, name=name, deleted_at__isnull=True).exists():
        raise Conflict(f"A topic named {name!r} already exists", field="name")
    topic = Topic.objects.create(
        organization=cluster.organization,
        cluster=cluster,
        name=name,
        partitions=partitions,
        retention_ms=retention,
        cleanup_policy=cleanup_policy,
        configs=cleaned,
    )
    _record_partitions(topic)
    event = audit_record(
        organization=cluster.organization,
        actor=actor,
        action="topic.created",
        target=cluster,
        after={"topic": name, "partitions": partitions, "retention_ms": retention},
    )
    return topic, lifecycle.request_change(cluster, kind="topic.create", actor=actor, event=event)


# What a change of a topic may touch (recorded before and after in its audit event).
CHANGEABLE = ["partitions", "retention_ms", "cleanup_policy", "configs"]


@transaction.atomic
def topic_update(
    *,
    topic: Topic,
    actor: Actor,
    partitions: int | None = None,
    retention_ms: int | None = None,
    cleanup_policy: str | None = None,
    configs: dict | None = None,
) -> tuple[Topic, Operation | None]:
    """Change a topic; a request that changes nothing returns it with no Operation (and the
    cluster's generation stays)."""
    cluster, topic = writable_item(topic)
    before = snapshot(topic, CHANGEABLE)
    if partitions is not None:
        if partitions < topic.partitions:
            raise InvalidInput(
                "Kafka cannot take partitions away from a topic: create a new topic instead",
                field="partitions",
            )
        if partitions > topic.partitions:
            check_creation(Creation.within(cluster, PARTITIONS_ADD))
        _check_partitions(cluster, adding=partitions - topic.partitions)
        added = partitions > topic.partitions
        topic.partitions = partitions
    else:
        added = False
    if retention_ms is not None:
        topic.retention_ms = validation.retention_ms(cluster, retention_ms)
    if cleanup_policy is not None:
        topic.cleanup_policy = validation.cleanup_policy(cleanup_policy)
    if configs is not None:
        topic.configs = validation.retention_bytes(cluster, validation.topic_configs(configs))
    after = snapshot(topic, CHANGEABLE)
    if after == before:
        return topic, None
    topic.save()
    if added:
        _record_partitions(topic)
    event = audit_record(
        organization=cluster.organization,
        actor=actor,
        action="topic.updated",
        target=cluster,
        before={"topic": topic.name, **before},
        after={"topic": topic.name, **after},
    )
    return topic, lifecycle.request_change(cluster, kind="topic.update", actor=actor, event=event)


def _record_partitions(topic: Topic) -> None:
    """Partition-hours are metered from this history (billing.metering)."""
    TopicPartitions.objects.create(
        organization_id=topic.organization_id,
        topic=topic,
        partitions=topic.partitions,
        since=topic.updated_at,
    )


@transaction.atomic
def topic_delete(*, topic: Topic, actor: Actor) -> Operation:
    return retire_item(
        topic,
        actor=actor,
        action="topic.deleted",
        kind="topic.delete",
        before={"topic": topic.name, "partitions": topic.partitions},
    )
