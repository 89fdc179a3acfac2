"""Writes of clusters themselves: creation (placed in a cell, within the organization's quota),
rename, reshape (tier, capacity), deletion and retry, and the organization's closing check (no
cluster left). The state, the generation and the Operation that follows each change are the
lifecycle's; the record of sizes (ClusterSize, what the time dimensions are metered from) is
written here, with the creation or reshape itself."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from foundation.errors import Conflict, InvalidInput, NotFound, OrganizationHasClusters
from tenants.audit import Actor, audit_record, snapshot
from tenants.models import Organization

from .. import lifecycle
from ..guards import CLUSTER_CREATE, CLUSTER_RESHAPE, Creation, check_creation
from ..models import Cluster, ClusterSize, ClusterState, Credential, Operation, Tier, Topic
from ..specs import Kind
from ..tiers import capacity_units_for
from .placement import ensure_cell_room, first_choice, place
from .quotas import exceeded, locked_quota


def _tier(slug: str) -> Tier:
    tier = Tier.objects.filter(slug=slug, offered=True).first()
    if tier is None:
        offered = ", ".join(Tier.objects.filter(offered=True).values_list("slug", flat=True))
        raise Conflict(f"Tier {slug!r} is not offered (offered: {offered})", field="type")
    return tier


def _record_size(cluster: Cluster, *, since) -> None:
    ClusterSize.objects.create(
        organization_id=cluster.organization_id,
        cluster=cluster,
        tier_id=cluster.tier_id,
        capacity_units=cluster.capacity_units,
        since=since,
    )


def clean_name(name: str, *, of: str, longest: int) -> str:
    """A display name as given, trimmed; ``of`` names what it names in the error."""
    name = (name or "").strip()
    if not 1 <= len(name) <= longest:
        raise InvalidInput(f"{of} names are 1 to {longest} characters", field="name")
    return name


def _clean_cluster_name(name: str) -> str:
    return clean_name(name, of="Cluster", longest=64)


def writable_cluster(cluster: Cluster) -> Cluster:
    """The cluster, locked until the transaction ends, for a change to what it holds (topics,
    credentials); refused while it is being deleted."""
    cluster = (
        Cluster.objects.select_for_update()
        .select_related("tier", "organization")
        .get(pk=cluster.pk)
    )
    if cluster.delete_requested_at is not None:
        raise Conflict("The cluster is being deleted")
    return cluster


def writable_item(item: Topic | Credential) -> tuple[Cluster, Topic | Credential]:
    """A topic or credential to change, locked with its writable cluster (cluster first, as
    every write of the cluster's contents locks them)."""
    cluster = writable_cluster(item.cluster)
    return cluster, type(item).objects.select_for_update().get(pk=item.pk)


def retire_item(
    item: Topic | Credential, *, actor: Actor, action: str, kind: str, before: dict
) -> Operation:
    """Delete a topic or credential (kept, marked deleted, for metering and the audit trail)
    and have the data plane follow. A topic has no id of its own: its cluster is the audit
    target, as for every topic event."""
    cluster = writable_cluster(item.cluster)
    type(item).objects.filter(pk=item.pk).update(deleted_at=timezone.now())
    target = item if isinstance(item, Credential) else cluster
    event = audit_record(
        organization=cluster.organization, actor=actor, action=action, target=target, before=before
    )
    return lifecycle.request_change(cluster, kind=kind, actor=actor, event=event)


@transaction.atomic
def cluster_create(
    *,
    organization: Organization,
    actor: Actor,
    name: str,
    tier_slug: str,
    region: str,
    capacity_units: int | None = None,
) -> tuple[Cluster, Operation]:
    name = _clean_cluster_name(name)
    tier = _tier(tier_slug)
    units = capacity_units_for(tier, capacity_units)
    alive = Cluster.objects.filter(organization=organization, deleted_at__isnull=True)
    if alive.filter(name=name).exists():
        raise Conflict(f"A cluster named {name!r} already exists", field="name")
    check_creation(
        Creation(organization=organization, action=CLUSTER_CREATE, tier=tier, capacity_units=units)
    )
    # A first choice of cell, unlocked: a region with no cell is refused before any write.
    cell = first_choice(tier=tier, capacity_units=units, region=region)
    try:
        cluster = Cluster.objects.create(
            organization=organization, name=name, tier=tier, cell=cell, capacity_units=units
        )
    except IntegrityError:
        # A concurrent creation of the name won. No savepoint: nothing more runs in this
        # transaction, which the error rolls back whole.
        raise Conflict(f"A cluster named {name!r} already exists", field="name") from None
    _record_size(cluster, since=cluster.created_at)
    event = audit_record(
        organization=organization,
        actor=actor,
        action="cluster.created",
        target=cluster,
        after={"name": name, "type": tier.slug, "region": region, "capacity_units": units},
    )
    operation = lifecycle.open_cluster(cluster, actor=actor, event=event)
    # What must hold under concurrency is checked last, under the quota's and the cells' locks,
    # so that concurrent creations queue only for these counts and the commit. Each counts
    # what committed before it took the lock, and its own row.
    quota = locked_quota(organization)
    # The closing check counts clusters under this lock too: a close that committed while this
    # request was under way is seen here, and one that comes later sees this cluster.
    if Organization.objects.filter(pk=organization.pk, closed_at__isnull=False).exists():
        raise NotFound("No such organization")
    current = alive.exclude(pk=cluster.pk).count()
    if current + 1 > quota.max_clusters:
        raise exceeded(limit="clusters", maximum=quota.max_clusters, current=current, requested=1)
    placed = place(tier=tier, capacity_units=units, region=region, placing=cluster)
    if placed.pk != cell.pk:
        cluster.cell = placed
        cluster.save(update_fields=["cell", "updated_at"])
    return cluster, operation


@transaction.atomic
def cluster_update(
    *,
    cluster: Cluster,
    actor: Actor,
    name: str | None = None,
    tier_slug: str | None = None,
    capacity_units: int | None = None,
) -> tuple[Cluster, Operation | None]:
    """Rename (no data-plane change), resize, or change tier. Resizing and tier changes are
    asynchronous: they return the Operation that follows them."""
    cluster = Cluster.objects.select_for_update().select_related("tier").get(pk=cluster.pk)
    if cluster.delete_requested_at is not None:
        raise Conflict("The cluster is being deleted")
    before = {
        "name": cluster.name,
        "type": cluster.tier.slug,
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
    tier = _tier(tier_slug) if tier_slug else cluster.tier
    units = capacity_units_for(
        tier,
        capacity_units
        if capacity_units is not None
        else (cluster.capacity_units if tier.kind == Kind.DEDICATED else None),
    )
    reshaped = tier.pk != cluster.tier_id or units != cluster.capacity_units
    if reshaped:
        check_creation(
            Creation(
                organization=cluster.organization,
                action=CLUSTER_RESHAPE,
                tier=tier,
                capacity_units=units,
                cluster=cluster,
            )
        )
        if tier.kind == Kind.DEDICATED and (
            cluster.tier.kind != Kind.DEDICATED or units > cluster.capacity_units
        ):
            ensure_cell_room(cluster, tier, units)
        cluster.tier = tier
        cluster.capacity_units = units
    cluster.save()
    if reshaped:  # billed from the moment it is asked for, as it is at creation
        _record_size(cluster, since=cluster.updated_at)
    event = audit_record(
        organization=cluster.organization,
        actor=actor,
        action="cluster.updated",
        target=cluster,
        before=before,
        after={"name": cluster.name, "type": tier.slug, "capacity_units": units},
    )
    operation = lifecycle.request_reshape(cluster, actor=actor, event=event) if reshaped else None
    return cluster, operation


@transaction.atomic
def cluster_delete(*, cluster: Cluster, actor: Actor) -> Operation:
    cluster = Cluster.objects.select_for_update().get(pk=cluster.pk)
    event = None
    if cluster.delete_requested_at is None:  # the first request
        event = audit_record(
            organization=cluster.organization,
            actor=actor,
            action="cluster.delete_requested",
            target=cluster,
            before=snapshot(cluster, ["name"]),
        )
    return lifecycle.request_deletion(cluster, actor=actor, event=event)


@transaction.atomic
def cluster_retry(*, cluster: Cluster, actor: Actor) -> Operation:
    """Try a failed cluster again: the same desired state, a fresh attempt."""
    cluster = Cluster.objects.select_for_update().get(pk=cluster.pk)
    if cluster.state != ClusterState.FAILED:
        raise Conflict(f"Only failed clusters are retried; this one is {cluster.state}")
    event = audit_record(
        organization=cluster.organization, actor=actor, action="cluster.retried", target=cluster
    )
    return lifecycle.request_retry(cluster, actor=actor, event=event)


def refuse_closing_with_clusters(organization: Organization) -> None:
    """The organization's closing check (registered from ``ClustersConfig.ready``): refused
    while any cluster is not deleted, one whose deletion is still under way included (it still
    runs, and is billed, until the data plane has let it go)."""
    locked_quota(organization)  # take turns with creations (see cluster_create)
    live = Cluster.objects.filter(organization=organization, deleted_at__isnull=True).count()
    if live:
        clusters = "cluster is" if live == 1 else "clusters are"
        raise OrganizationHasClusters(
            f"{live} {clusters} not deleted yet: delete every cluster, and wait until its"
            " deletion is done, before closing the organization",
            clusters=live,
        )
