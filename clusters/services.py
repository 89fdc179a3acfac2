"""Writes of the clusters app. Every change to what the data plane should hold bumps the
cluster's generation, opens an Operation, leaves an audit event, and queues a reconcile once
the transaction has committed."""

from __future__ import annotations

import logging
import secrets
import uuid
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

from foundation import secretbox
from foundation.errors import Conflict, DomainError, InvalidInput, QuotaExceeded
from tenants.audit import Actor, audit_record, snapshot
from tenants.models import Organization

from . import rendering, validation
from .models import (
    MB,
    Cell,
    CleanupPolicy,
    Cluster,
    ClusterState,
    ClusterType,
    Credential,
    Operation,
    OperationState,
    OrganizationQuota,
    Topic,
    TopicPartitions,
)
from .specs import Kind

log = logging.getLogger(__name__)


class CapacityUnavailable(DomainError):
    code = "capacity_unavailable"
    title = "No cell in this region has room for the cluster"
    status = 503


# Quotas ---------------------------------------------------------------------------------------


def locked_quota(organization: Organization) -> OrganizationQuota:
    """The organization's quota row, locked until the transaction ends: concurrent requests of
    one organization that consume quota take turns, so together they cannot exceed it."""
    locked = OrganizationQuota.objects.select_for_update()
    quota = locked.filter(organization=organization).first()
    if quota is None:  # the organization's first use of a quota: the defaults
        OrganizationQuota.objects.get_or_create(organization=organization)
        quota = locked.get(organization=organization)
    return quota


def _exceeded(*, limit: str, maximum: int, current: int, requested: int) -> QuotaExceeded:
    excess = current + requested - maximum
    return QuotaExceeded(
        f"This would make {current + requested} {limit.replace('_', ' ')}, "
        f"{excess} over the limit of {maximum}",
        limit=limit,
        maximum=maximum,
        current=current,
        requested=requested,
        excess=excess,
    )


# Placement ------------------------------------------------------------------------------------


def place(
    *,
    tier: ClusterType,
    capacity_units: int,
    region: str,
    lock: bool = True,
    placing: Cluster | None = None,
) -> Cell:
    """The accepting cell of the region with the most room for this kind of cluster. With
    ``lock``, the region's cells stay locked until the transaction ends, so two placements
    cannot both take the last place; ``placing`` is a cluster already written with a tentative
    cell, not counted as using room."""
    cells = Cell.objects.filter(accepting=True, region=region).order_by("slug")
    cells = list(cells.select_for_update() if lock else cells)
    if not cells:  # a region of the catalog where no cell accepts clusters now
        raise CapacityUnavailable(
            f"No cell in {region} accepts new clusters; GET /api/v1/catalog/ lists the regions "
            "that do",
            region=region,
        )
    usage = cell_usage(cells, excluding=placing)

    def room(cell: Cell) -> int:
        shared, dedicated_units = usage[cell.pk]
        if tier.kind == Kind.DEDICATED:
            return cell.max_dedicated_units - dedicated_units - capacity_units
        return cell.max_shared_clusters - shared - 1

    best = max(cells, key=room)
    if room(best) < 0:
        raise CapacityUnavailable(
            f"Every cell in {region} is full for {tier.name} clusters; try another region or "
            "fewer capacity units",
            region=region,
        )
    return best


def cell_usage(
    cells: list[Cell], *, excluding: Cluster | None = None
) -> dict[int, tuple[int, int]]:
    """Per cell: live shared (serverless, standard) clusters, and capacity units of dedicated
    ones. One grouped count over the live clusters of these cells (a partial index)."""
    dedicated = Q(cluster_type__kind=Kind.DEDICATED)
    live = Cluster.unscoped_all_tenants.filter(cell__in=cells, deleted_at__isnull=True)
    if excluding is not None:
        live = live.exclude(pk=excluding.pk)
    rows = (
        live.order_by()
        .values("cell_id")
        .annotate(
            shared=Count("pk", filter=~dedicated), units=Sum("capacity_units", filter=dedicated)
        )
    )
    usage = {cell.pk: (0, 0) for cell in cells}
    usage.update({row["cell_id"]: (row["shared"], row["units"] or 0) for row in rows})
    return usage


# Clusters -------------------------------------------------------------------------------------


def _tier(slug: str) -> ClusterType:
    tier = ClusterType.objects.filter(slug=slug, offered=True).first()
    if tier is None:
        offered = ", ".join(ClusterType.objects.filter(offered=True).values_list("slug", flat=True))
        raise Conflict(f"Cluster type {slug!r} is not offered (offered: {offered})", field="type")
    return tier


def _units(tier: ClusterType, capacity_units: int | None) -> int:
    if tier.kind != Kind.DEDICATED:
        if capacity_units not in (None, 1):
            raise InvalidInput(
                f"{tier.name} clusters are not sized in capacity units", field="capacity_units"
            )
        return 1
    units = capacity_units or tier.min_capacity_units
    if not tier.min_capacity_units <= units <= tier.max_capacity_units:
        raise InvalidInput(
            f"{tier.name} clusters have {tier.min_capacity_units} to "
            f"{tier.max_capacity_units} capacity units",
            field="capacity_units",
        )
    return units


def _open_operation(*, cluster: Cluster, kind: str, actor: Actor) -> Operation:
    # A newer change supersedes what an unfinished one asked for: the reconciler converges to
    # the latest generation, and the older operation ends when that one does.
    return Operation.objects.create(
        organization=cluster.organization,
        cluster=cluster,
        kind=kind,
        target_generation=cluster.generation,
        requested_by=actor.label,
    )


def _reconcile_after_commit(cluster: Cluster) -> None:
    pk = cluster.pk
    transaction.on_commit(lambda: request_reconcile(pk))


# A queued run whose task has not started this long after it was due was lost (a broker or
# worker crash): the periodic resync queues another.
QUEUED_RUN_LOST_AFTER = timedelta(minutes=5)


def not_queued() -> Q:
    """Clusters with no reconcile queued, or whose queued one is long overdue."""
    overdue = timezone.now() - QUEUED_RUN_LOST_AFTER
    return Q(reconcile_ticket="") | Q(reconcile_due_at__lt=overdue)


def reserve_reconcile(cluster_pk: int, *, countdown: float = 0) -> str | None:
    """Mark a reconcile of the cluster as queued, due in ``countdown`` seconds, and return the
    ticket its task must carry; None when one is queued already (it has not started, so it
    will read the latest desired state: this request is coalesced into it). One conditional
    UPDATE: of concurrent requests, beat's included, exactly one gets the ticket."""
    ticket = uuid.uuid4().hex
    reserved = (
        Cluster.unscoped_all_tenants.filter(pk=cluster_pk)
        .filter(not_queued())
        .update(
            reconcile_ticket=ticket,
            reconcile_due_at=timezone.now() + timedelta(seconds=countdown),
        )
    )
    return ticket if reserved else None


def request_reconcile(cluster_pk: int) -> bool:
    """Queue a reconcile of the cluster unless one is queued already. Whatever called this has
    committed: a broker that cannot take the task is logged, not raised, and the periodic
    resync queues the run once the broker is back. True when a task was sent."""
    from .tasks import reconcile_cluster

    ticket = reserve_reconcile(cluster_pk)
    if ticket is None:
        return False
    try:
        reconcile_cluster.apply_async((cluster_pk,), {"ticket": ticket})
    except BrokerUnavailable:
        log.warning(
            "cluster %s: the task broker refused its reconcile; the periodic resync queues it",
            cluster_pk,
            exc_info=True,
        )
        Cluster.unscoped_all_tenants.filter(pk=cluster_pk, reconcile_ticket=ticket).update(
            reconcile_ticket="", reconcile_due_at=None
        )
        return False
    return True


@transaction.atomic
def cluster_create(
    *,
    organization: Organization,
    actor: Actor,
    name: str,
    type_slug: str,
    region: str,
    capacity_units: int | None = None,
) -> tuple[Cluster, Operation]:
    name = _clean_cluster_name(name)
    tier = _tier(type_slug)
    units = _units(tier, capacity_units)
    alive = Cluster.objects.filter(organization=organization, deleted_at__isnull=True)
    if alive.filter(name=name).exists():
        raise Conflict(f"A cluster named {name!r} already exists", field="name")
    # A first choice of cell, unlocked: a full or unknown region is refused before any write.
    cell = place(tier=tier, capacity_units=units, region=region, lock=False)
    try:
        with transaction.atomic():
            cluster = Cluster.objects.create(
                organization=organization,
                name=name,
                cluster_type=tier,
                cell=cell,
                capacity_units=units,
            )
    except IntegrityError:
        raise Conflict(f"A cluster named {name!r} already exists", field="name") from None
    operation = _open_operation(cluster=cluster, kind="cluster.create", actor=actor)
    audit_record(
        organization=organization,
        actor=actor,
        action="cluster.created",
        target=cluster,
        after={"name": name, "type": tier.slug, "region": region, "capacity_units": units},
    )
    # What must hold under concurrency is checked last, under the quota's and the cells' locks,
    # so that concurrent creations queue only for these counts and the commit. Each counts
    # what committed before it took the lock, and its own row.
    quota = locked_quota(organization)
    current = alive.exclude(pk=cluster.pk).count()
    if current + 1 > quota.max_clusters:
        raise _exceeded(limit="clusters", maximum=quota.max_clusters, current=current, requested=1)
    placed = place(tier=tier, capacity_units=units, region=region, placing=cluster)
    if placed.pk != cell.pk:
        cluster.cell = placed
        cluster.save(update_fields=["cell", "updated_at"])
    _reconcile_after_commit(cluster)
    return cluster, operation


@transaction.atomic
def cluster_update(
    *,
    cluster: Cluster,
    actor: Actor,
    name: str | None = None,
    type_slug: str | None = None,
    capacity_units: int | None = None,
) -> tuple[Cluster, Operation | None]:
    """Rename (no data-plane change), resize, or change type. Resizing and type changes are
    asynchronous: they return the Operation that follows them."""
    cluster = Cluster.objects.select_for_update().select_related("cluster_type").get(pk=cluster.pk)
    if cluster.delete_requested_at is not None:
        raise Conflict("The cluster is being deleted")
    before = {
        "name": cluster.name,
        "type": cluster.cluster_type.slug,
        "capacity_units": cluster.capacity_units,
    }
    if name is not None and _clean_cluster_name(name) != cluster.name:
        cluster.name = _clean_cluster_name(name)
        if (
            Cluster.objects.filter(
                organization=cluster.organization, name=cluster.name, deleted_at__isnull=True
            )
            .exclude(pk=cluster.pk)
            .exists()
        ):
            raise Conflict(f"A cluster named {cluster.name!r} already exists", field="name")
    tier = _tier(type_slug) if type_slug else cluster.cluster_type
    units = _units(
        tier,
        capacity_units
        if capacity_units is not None
        else (cluster.capacity_units if tier.kind == Kind.DEDICATED else None),
    )
    reshaped = tier.pk != cluster.cluster_type_id or units != cluster.capacity_units
    if reshaped:
        if tier.kind == Kind.DEDICATED and (
            cluster.cluster_type.kind != Kind.DEDICATED or units > cluster.capacity_units
        ):
            _ensure_cell_room(cluster, tier, units)
        cluster.cluster_type = tier
        cluster.capacity_units = units
        cluster.generation += 1
        cluster.state = ClusterState.UPDATING
    cluster.save()
    operation = (
        _open_operation(cluster=cluster, kind="cluster.update", actor=actor) if reshaped else None
    )
    audit_record(
        organization=cluster.organization,
        actor=actor,
        action="cluster.updated",
        target=cluster,
        before=before,
        after={"name": cluster.name, "type": tier.slug, "capacity_units": units},
    )
    if reshaped:
        _reconcile_after_commit(cluster)
    return cluster, operation


def _ensure_cell_room(cluster: Cluster, tier: ClusterType, units: int) -> None:
    cell = Cell.objects.select_for_update().get(pk=cluster.cell_id)
    _shared, used = cell_usage([cell], excluding=cluster)[cell.pk]
    if used + units > cell.max_dedicated_units:
        raise CapacityUnavailable(
            f"The cluster's cell has room for {cell.max_dedicated_units - used} more capacity "
            f"units, not {units}",
            region=cell.region,
        )


@transaction.atomic
def cluster_delete(*, cluster: Cluster, actor: Actor) -> Operation:
    cluster = Cluster.objects.select_for_update().get(pk=cluster.pk)
    if cluster.delete_requested_at is None:
        cluster.delete_requested_at = timezone.now()
        cluster.generation += 1
        cluster.state = ClusterState.DELETING
        cluster.save(update_fields=["delete_requested_at", "generation", "state", "updated_at"])
        audit_record(
            organization=cluster.organization,
            actor=actor,
            action="cluster.delete_requested",
            target=cluster,
            before=snapshot(cluster, ["name"]),
        )
    operation = _open_operation(cluster=cluster, kind="cluster.delete", actor=actor)
    _reconcile_after_commit(cluster)
    return operation


@transaction.atomic
def cluster_retry(*, cluster: Cluster, actor: Actor) -> Operation:
    """Try a failed cluster again: the same desired state, a fresh attempt."""
    cluster = Cluster.objects.select_for_update().get(pk=cluster.pk)
    if cluster.state != ClusterState.FAILED:
        raise Conflict(f"Only failed clusters are retried; this one is {cluster.state}")
    cluster.generation += 1
    cluster.state = (
        ClusterState.PROVISIONING if cluster.observed_generation == 0 else ClusterState.UPDATING
    )
    cluster.failure_reason = cluster.failure_message = ""
    cluster.reconcile_attempts = 0
    cluster.save()
    operation = _open_operation(cluster=cluster, kind="cluster.retry", actor=actor)
    audit_record(
        organization=cluster.organization, actor=actor, action="cluster.retried", target=cluster
    )
    _reconcile_after_commit(cluster)
    return operation


def finish_operations(
    *,
    cluster: Cluster,
    failed: bool = False,
    code: str = "",
    message: str = "",
    generation: int | None = None,
) -> None:
    """End the cluster's open operations the current state answers. A failure of
    ``generation`` fails the operations up to it, not those of a newer one the data plane has
    not seen yet."""
    open_operations = Operation.objects.filter(
        cluster=cluster, state__in=[OperationState.PENDING, OperationState.RUNNING]
    )
    now = timezone.now()
    if failed:
        if generation is not None:
            open_operations = open_operations.filter(target_generation__lte=generation)
        open_operations.update(
            state=OperationState.FAILED, error_code=code, error_message=message, finished_at=now
        )
        return
    open_operations.filter(target_generation__lte=cluster.observed_generation).update(
        state=OperationState.SUCCEEDED, finished_at=now
    )


def _clean_cluster_name(name: str) -> str:
    name = (name or "").strip()
    if not 1 <= len(name) <= 64:
        raise InvalidInput("Cluster names are 1 to 64 characters", field="name")
    return name


# Topics ---------------------------------------------------------------------------------------


def _writable(cluster: Cluster) -> Cluster:
    cluster = (
        Cluster.objects.select_for_update()
        .select_related("cluster_type", "organization")
        .get(pk=cluster.pk)
    )
    if cluster.delete_requested_at is not None:
        raise Conflict("The cluster is being deleted")
    return cluster


def _data_plane_changed(cluster: Cluster, *, kind: str, actor: Actor) -> Operation:
    cluster.generation += 1
    if cluster.state == ClusterState.READY:
        cluster.state = ClusterState.UPDATING
    cluster.save(update_fields=["generation", "state", "updated_at"])
    operation = _open_operation(cluster=cluster, kind=kind, actor=actor)
    _reconcile_after_commit(cluster)
    return operation


def _check_partitions(cluster: Cluster, *, adding: int) -> None:
    """The cluster's tier limit and the organization's quota, both; the caller holds the
    organization's quota lock, so concurrent requests cannot both take the last partitions."""
    quota = locked_quota(cluster.organization)
    live = Topic.objects.filter(deleted_at__isnull=True)
    in_cluster = live.filter(cluster=cluster).aggregate(n=Sum("partitions"))["n"] or 0
    tier_limit = cluster.cluster_type.max_partitions * cluster.capacity_units
    if in_cluster + adding > tier_limit:
        raise _exceeded(
            limit="partitions_per_cluster", maximum=tier_limit, current=in_cluster, requested=adding
        )
    in_org = live.filter(organization=cluster.organization).aggregate(n=Sum("partitions"))["n"] or 0
    if in_org + adding > quota.max_partitions:
        raise _exceeded(
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
    cluster = _writable(cluster)
    name = validation.topic_name(cluster, name)
    if partitions < 1:
        raise InvalidInput("A topic has at least one partition", field="partitions")
    if cleanup_policy not in CleanupPolicy.values:
        raise InvalidInput(
            f"cleanup_policy is one of {CleanupPolicy.values}", field="cleanup_policy"
        )
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
    audit_record(
        organization=cluster.organization,
        actor=actor,
        action="topic.created",
        target=cluster,
        after={"topic": name, "partitions": partitions, "retention_ms": retention},
    )
    return topic, _data_plane_changed(cluster, kind="topic.create", actor=actor)


@transaction.atomic
def topic_update(
    *,
    topic: Topic,
    actor: Actor,
    partitions: int | None = None,
    retention_ms: int | None = None,
    configs: dict | None = None,
) -> tuple[Topic, Operation | None]:
    """Change a topic; a request that changes nothing returns it with no Operation (and the
    cluster's generation stays)."""
    cluster = _writable(topic.cluster)
    topic = Topic.objects.select_for_update().get(pk=topic.pk)
    before = snapshot(topic, ["partitions", "retention_ms", "configs"])
    if partitions is not None:
        if partitions < topic.partitions:
            raise InvalidInput(
                "Kafka cannot take partitions away from a topic: create a new topic instead",
                field="partitions",
            )
        _check_partitions(cluster, adding=partitions - topic.partitions)
        added = partitions > topic.partitions
        topic.partitions = partitions
    else:
        added = False
    if retention_ms is not None:
        topic.retention_ms = validation.retention_ms(cluster, retention_ms)
    if configs is not None:
        topic.configs = validation.retention_bytes(cluster, validation.topic_configs(configs))
    after = snapshot(topic, ["partitions", "retention_ms", "configs"])
    if after == before:
        return topic, None
    topic.save()
    if added:
        _record_partitions(topic)
    audit_record(
        organization=cluster.organization,
        actor=actor,
        action="topic.updated",
        target=cluster,
        before={"topic": topic.name, **before},
        after={"topic": topic.name, **after},
    )
    return topic, _data_plane_changed(cluster, kind="topic.update", actor=actor)


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
    cluster = _writable(topic.cluster)
    Topic.objects.filter(pk=topic.pk).update(deleted_at=timezone.now())
    audit_record(
        organization=cluster.organization,
        actor=actor,
        action="topic.deleted",
        target=cluster,
        before={"topic": topic.name, "partitions": topic.partitions},
    )
    return _data_plane_changed(cluster, kind="topic.delete", actor=actor)


# Credentials ----------------------------------------------------------------------------------


def _new_password() -> str:
    return secrets.token_urlsafe(32)


def _check_rates(cluster: Cluster, rates: dict) -> dict:
    tier = cluster.cluster_type
    ceilings = {
        "producer_byte_rate": tier.ingress_mbps * MB * cluster.capacity_units,
        "consumer_byte_rate": tier.egress_mbps * MB * cluster.capacity_units,
        "request_percentage": 100,
    }
    for field, value in rates.items():
        if value is None:
            continue
        if not 1 <= value <= ceilings[field]:
            raise InvalidInput(f"{field} is 1 to {ceilings[field]} on this cluster", field=field)
    return rates


@transaction.atomic
def credential_create(
    *,
    cluster: Cluster,
    actor: Actor,
    name: str,
    producer_byte_rate: int | None = None,
    consumer_byte_rate: int | None = None,
    request_percentage: int | None = None,
) -> tuple[Credential, str, Operation]:
    """A SCRAM-SHA-512 principal. Returns it with its password (shown once) and the Operation
    that puts it in the data plane."""
    cluster = _writable(cluster)
    name = (name or "").strip()
    if not 1 <= len(name) <= 100:
        raise InvalidInput("Credential names are 1 to 100 characters", field="name")
    rates = _check_rates(
        cluster,
        {
            "producer_byte_rate": producer_byte_rate,
            "consumer_byte_rate": consumer_byte_rate,
            "request_percentage": request_percentage,
        },
    )
    quota = locked_quota(cluster.organization)
    live = Credential.objects.filter(deleted_at__isnull=True)
    in_cluster = live.filter(cluster=cluster).count()
    if in_cluster + 1 > cluster.cluster_type.max_credentials:
        raise _exceeded(
            limit="credentials_per_cluster",
            maximum=cluster.cluster_type.max_credentials,
            current=in_cluster,
            requested=1,
        )
    in_org = live.filter(organization=cluster.organization).count()
    if in_org + 1 > quota.max_credentials:
        raise _exceeded(
            limit="credentials", maximum=quota.max_credentials, current=in_org, requested=1
        )
    password = _new_password()
    credential = Credential(organization=cluster.organization, cluster=cluster, name=name, **rates)
    credential.username = f"{rendering.resource_name(cluster.public_id)}-{credential.public_id[5:]}"
    credential.password_encrypted = secretbox.seal(password)
    credential.save()
    audit_record(
        organization=cluster.organization,
        actor=actor,
        action="credential.created",
        target=credential,
        after={"name": name, "username": credential.username, **rates},
    )
    return credential, password, _data_plane_changed(cluster, kind="credential.create", actor=actor)


@transaction.atomic
def credential_rotate(*, credential: Credential, actor: Actor) -> tuple[Credential, str, Operation]:
    cluster = _writable(credential.cluster)
    credential = Credential.objects.select_for_update().get(pk=credential.pk)
    password = _new_password()
    credential.password_encrypted = secretbox.seal(password)
    credential.rotated_at = timezone.now()
    credential.save(update_fields=["password_encrypted", "rotated_at"])
    audit_record(
        organization=cluster.organization,
        actor=actor,
        action="credential.rotated",
        target=credential,
    )
    return credential, password, _data_plane_changed(cluster, kind="credential.rotate", actor=actor)


@transaction.atomic
def credential_update_quotas(
    *, credential: Credential, actor: Actor, **rates: int | None
) -> tuple[Credential, Operation]:
    cluster = _writable(credential.cluster)
    credential = Credential.objects.select_for_update().get(pk=credential.pk)
    before = snapshot(credential, list(rates))
    for field, value in _check_rates(cluster, rates).items():
        setattr(credential, field, value)
    credential.save()
    audit_record(
        organization=cluster.organization,
        actor=actor,
        action="credential.quotas_changed",
        target=credential,
        before=before,
        after=snapshot(credential, list(rates)),
    )
    return credential, _data_plane_changed(cluster, kind="credential.update", actor=actor)


@transaction.atomic
def credential_delete(*, credential: Credential, actor: Actor) -> Operation:
    cluster = _writable(credential.cluster)
    Credential.objects.filter(pk=credential.pk).update(deleted_at=timezone.now())
    audit_record(
        organization=cluster.organization,
        actor=actor,
        action="credential.deleted",
        target=credential,
        before={"name": credential.name, "username": credential.username},
    )
    return _data_plane_changed(cluster, kind="credential.delete", actor=actor)
