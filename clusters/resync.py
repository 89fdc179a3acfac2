"""A cell's resync by listing: what the data plane holds for all of a cell's clusters, made
what the database says, in a bounded number of requests and queries.

One pass: the desired state of every idle live cluster of the cell, read in three queries
(clusters, their topics, their credentials) and rendered in memory by the reconciler's own
``build_spec`` and ``clusters.rendering``; one listing of everything Sluice manages in the cell
(``drivers.Lister``: a LIST per kind, paginated, selecting managed-by=sluice); then only what
differs is written. An object drifted when a field Sluice renders is missing or different in
the listed one (what the API server or Strimzi add, and status, are not Sluice's and are
ignored); a drifted or missing object is server-side-applied again; a labelled object no
cluster renders is deleted. Status comes from the same listing: a cluster is recorded through
``clusters.lifecycle`` only when what it would record differs from what it holds.

Per-cluster reconciles stay for what users change. This pass leaves alone, and never prunes
the objects of, a cluster being deleted, one with a reconcile queued or running (its run does
the work) and one whose spec cannot be built (its run reports why). Every write for a cluster
is made under the cluster's lease (``reconciler.lease_held``) and only while its row still has
the generation that was rendered, so a pass that read the database before a change never
undoes it: a topic added since has a newer generation, and the pass's prune of that cluster
stops. An object whose cluster was not in the pass's reading is deleted only if, read again
after the listing, no live cluster has that id (a cluster's objects are written after its row
commits, so one the listing saw has a row by then) and it is older than the reading.

One pass per cell at a time (a PostgreSQL advisory lock): a second finds the first running
and ends, the first covering it.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from tenants.scoping import tenant_scope

from . import naming
from .desired_state import CredentialUnreadable, build_spec
from .drivers import lister_for
from .drivers.base import Inventory, Lister, ObjectKey, Observation, key_of, unguarded
from .models import Cell, Cluster, ClusterState, Credential, Topic
from .reconciler import LeaseLost, lease_held, record_observation
from .rendering import InvalidSpec, render
from .specs import ClusterSpec, Kind

log = logging.getLogger(__name__)

# pg_try_advisory_lock's first key for a cell's resync; the second is the cell's pk.
LOCK_KEY = 1_735_001
# An object created this little before the database was read is never pruned by a pass that
# did not know its cluster (it also absorbs clock skew between here and the API server).
PRUNE_MARGIN = timedelta(seconds=10)
# Clusters whose new status is recorded per transaction.
RECORD_BATCH = 200


@dataclass
class Planned:
    """One idle cluster of the pass: its spec, and its rendering by key, in apply order."""

    cluster: Cluster
    spec: ClusterSpec
    manifests: dict[ObjectKey, dict]

    @property
    def namespace(self) -> str | None:
        """Its dedicated namespace, if it has one."""
        if self.spec.kind != Kind.DEDICATED:
            return None
        return naming.dedicated_namespace(self.spec.cluster_id)


@dataclass
class Desired:
    read_at: datetime
    planned: dict[str, Planned] = field(default_factory=dict)  # by cluster id
    # Clusters whose objects the pass never touches: deleting, queued, running, unrenderable.
    left_alone: set[str] = field(default_factory=set)

    def dedicated_namespaces(self) -> dict[str, str]:
        return {p.namespace: cid for cid, p in self.planned.items() if p.namespace is not None}


@dataclass
class Differences:
    repairs: dict[str, list[dict]] = field(default_factory=dict)  # missing or drifted, by cluster
    orphans: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))
    strays: list[dict] = field(default_factory=list)  # labelled for no cluster of the pass


@dataclass
class ResyncResult:
    cell: str
    busy: bool = False  # another pass of the cell was running: this one did nothing
    clusters: int = 0  # idle clusters compared
    left_alone: int = 0
    listing_requests: int = 0
    repaired: list[ObjectKey] = field(default_factory=list)
    pruned: list[ObjectKey] = field(default_factory=list)
    recorded: int = 0  # clusters whose status changed
    skipped: int = 0  # clusters a run took before their repair (the run repairs them)
    failed: int = 0  # clusters whose repair the data plane refused (logged; next pass)
    listed: int = 0  # objects in the listing
    seconds: dict[str, float] = field(default_factory=dict)  # by step

    def summary(self) -> dict:
        return {
            "cell": self.cell,
            "busy": self.busy,
            "clusters": self.clusters,
            "listing_requests": self.listing_requests,
            "repaired": len(self.repaired),
            "pruned": len(self.pruned),
            "recorded": self.recorded,
            "skipped": self.skipped,
            "failed": self.failed,
            "listed": self.listed,
            "seconds": self.seconds,
        }


def resync_cell(cell: Cell, *, lister: Lister | None = None) -> ResyncResult:
    """One pass over the cell, unless one is running already."""
    with _cell_lock(cell) as held:
        if not held:
            return ResyncResult(cell=cell.slug, busy=True)
        lister = lister or lister_for(cell)
        step = _Steps()
        desired = desired_state(cell)
        step.done("desired state")
        inventory = lister.inventory(desired.dedicated_namespaces())
        step.done("listing")
        result = ResyncResult(
            cell=cell.slug,
            clusters=len(desired.planned),
            left_alone=len(desired.left_alone),
            listing_requests=inventory.requests,
            listed=len(inventory.objects),
            seconds=step.seconds,
        )
        found = differences(desired, inventory, lister.comparable)
        step.done("comparing")
        touched = set(found.repairs) | set(found.orphans)
        for cluster_id in sorted(touched):
            _repair(
                desired.planned[cluster_id],
                found.repairs.get(cluster_id, []),
                found.orphans.get(cluster_id, []),
                lister,
                result,
            )
        result.pruned += _prune_strays(found.strays, desired.read_at, lister)
        step.done("writing")
        result.recorded = _record_changes(desired, inventory, lister, skip=touched)
        step.done("status")
        return result


class _Steps:
    """Seconds spent in each step of a pass."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.monotonic()

    def done(self, step: str) -> None:
        now = time.monotonic()
        self.seconds[step] = round(now - self._last, 3)
        self._last = now


@contextmanager
def _cell_lock(cell: Cell) -> Iterator[bool]:
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_KEY, cell.pk])
        held = cursor.fetchone()[0]
    try:
        yield held
    finally:
        if held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_KEY, cell.pk])


# The desired state ---------------------------------------------------------------------------


def desired_state(cell: Cell) -> Desired:
    """Every idle live cluster of the cell, rendered: three queries whatever their number."""
    desired = Desired(read_at=timezone.now())
    clusters = Cluster.unscoped_all_tenants.filter(cell=cell, deleted_at__isnull=True)
    live = {"cluster__cell": cell, "cluster__deleted_at__isnull": True, "deleted_at__isnull": True}
    topics = _by_cluster(Topic.unscoped_all_tenants.filter(**live).order_by("cluster_id", "name"))
    credentials = _by_cluster(
        Credential.unscoped_all_tenants.filter(**live).order_by("cluster_id", "pk")
    )
    for cluster in clusters.select_related("tier", "organization"):
        cluster.cell = cell
        if not _idle(cluster, desired.read_at):
            desired.left_alone.add(cluster.public_id)
            continue
        try:
            spec = build_spec(
                cluster,
                topics=topics.get(cluster.pk, ()),
                credentials=credentials.get(cluster.pk, ()),
            )
            manifests = render(spec)
        except (CredentialUnreadable, InvalidSpec):
            desired.left_alone.add(cluster.public_id)  # its own run reports it
            continue
        desired.planned[cluster.public_id] = Planned(
            cluster, spec, {key_of(m): m for m in manifests}
        )
    return desired


def _by_cluster(rows: Iterable) -> dict[int, list]:
    grouped = defaultdict(list)
    for row in rows:
        grouped[row.cluster_id].append(row)
    return grouped


def _idle(cluster: Cluster, now: datetime) -> bool:
    """Neither being deleted, nor with a reconcile queued or running."""
    running = bool(cluster.lease_holder) and (
        cluster.lease_expires_at is not None and cluster.lease_expires_at >= now
    )
    return cluster.delete_requested_at is None and not cluster.reconcile_ticket and not running


# Comparing -----------------------------------------------------------------------------------


def contains(desired, listed) -> bool:
    """Whether every field of ``desired`` is in ``listed`` with the same value (lists element
    by element, of the same length); fields only ``listed`` has are the API server's or
    Strimzi's. A null Sluice renders is a field it leaves unset."""
    if isinstance(desired, dict):
        if not isinstance(listed, dict):
            return False
        return all(
            listed.get(name) is None
            if value is None
            else name in listed and contains(value, listed[name])
            for name, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(listed, list)
            and len(desired) == len(listed)
            and all(map(contains, desired, listed))
        )
    if isinstance(desired, bool) or isinstance(listed, bool):
        return desired is listed
    if isinstance(desired, int | float) and isinstance(listed, int | float):
        return float(desired) == float(listed)  # 1.0 may come back as 1
    return desired == listed


def _drifted(manifest: dict, listed: dict | None) -> bool:
    if listed is None:
        return True
    metadata = manifest["metadata"]
    mine = {name: metadata[name] for name in ("labels", "annotations") if name in metadata}
    fields = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind", "metadata")}
    return not (contains(mine, listed.get("metadata") or {}) and contains(fields, listed))


def differences(
    desired: Desired, inventory: Inventory, comparable: Callable[[dict], dict]
) -> Differences:
    found = Differences()
    for cluster_id, planned in desired.planned.items():
        namespace = planned.namespace
        whole = namespace is not None and (
            namespace in inventory.absent or namespace in inventory.locked_out
        )
        if namespace in inventory.unlisted and not whole:
            continue  # terminating, or not Sluice's: nothing there is compared
        drifted = [
            manifest
            for key, manifest in planned.manifests.items()
            if whole or _missing_or_drifted(key, comparable(manifest), inventory)
        ]
        if drifted:
            found.repairs[cluster_id] = drifted
    for key, listed in inventory.objects.items():
        metadata = listed["metadata"]
        labels = metadata.get("labels") or {}
        if (
            labels.get(naming.MANAGED_BY_LABEL) != naming.MANAGED_BY
            or metadata.get("deletionTimestamp")
            or key[0] == "Namespace"
            or key[1] in inventory.unlisted
        ):
            continue
        cluster_id = labels.get(naming.CLUSTER_LABEL, "")
        planned = desired.planned.get(cluster_id)
        if cluster_id in desired.left_alone:
            continue
        if planned is None:
            found.strays.append(listed)
        elif key not in planned.manifests:
            found.orphans[cluster_id].append(listed)
    return found


def _missing_or_drifted(key: ObjectKey, manifest: dict, inventory: Inventory) -> bool:
    listed = inventory.objects.get(key)
    if listed is None and key[0] == "RoleBinding":
        # Sluice's account may not list RoleBindings: one gone shows as its namespace's lists
        # being refused (the namespace is then locked out and its cluster applied whole).
        return False
    return _drifted(manifest, listed)


# Writing --------------------------------------------------------------------------------------


def _repair(
    planned: Planned, manifests: list[dict], orphans: list[dict], lister: Lister, result
) -> None:
    """Apply the cluster's missing and drifted objects and delete its orphans, under its lease
    and while it is still at the generation rendered."""
    generation = planned.spec.generation
    with lease_held(planned.cluster.pk) as lease:
        if lease is None:
            result.skipped += 1
            return

        def guard() -> None:
            if not lease.holding().filter(generation=generation, delete_requested_at=None).exists():
                raise LeaseLost(f"cluster {planned.spec.cluster_id} changed during the resync")

        try:
            if manifests:
                lister.apply_objects(planned.spec, manifests, guard=guard)
            result.repaired += [key_of(m) for m in manifests]
            for listed in orphans:
                lister.delete_object(listed, guard=guard)
                result.pruned.append(key_of(listed))
        except LeaseLost:
            result.skipped += 1
        except Exception:  # one cluster's refusal does not stop the cell's pass
            log.exception("resync of %s could not repair it", planned.spec.cluster_id)
            result.failed += 1


def _prune_strays(strays: list[dict], read_at: datetime, lister: Lister) -> list[ObjectKey]:
    """Delete labelled objects of no cluster the pass knew, once the database, read again
    after the listing, has no live cluster of their id either."""
    ids = {(s["metadata"].get("labels") or {}).get(naming.CLUSTER_LABEL, "") for s in strays}
    live = set(
        Cluster.unscoped_all_tenants.filter(public_id__in=ids, deleted_at__isnull=True).values_list(
            "public_id", flat=True
        )
    )
    cutoff = read_at - PRUNE_MARGIN
    pruned = []
    for listed in strays:
        metadata = listed["metadata"]
        if metadata["labels"].get(naming.CLUSTER_LABEL, "") in live:
            continue  # a cluster newer than the reading, or another cell's: its run decides
        created = metadata.get("creationTimestamp")
        if created and datetime.fromisoformat(created) >= cutoff:
            continue
        lister.delete_object(listed, guard=unguarded)
        pruned.append(key_of(listed))
    return pruned


# Status -------------------------------------------------------------------------------------


def _record_changes(
    desired: Desired, inventory: Inventory, lister: Lister, *, skip: set[str]
) -> int:
    """Record the listed status of each cluster whose record it would change (those repaired
    by this pass are looked at by the next, once the data plane has seen the repair)."""
    changed: dict[int, tuple[Planned, Observation]] = {}
    for cluster_id, planned in desired.planned.items():
        if cluster_id in skip or planned.namespace in inventory.unlisted:
            continue
        observation = lister.observe_listed(planned.spec, inventory)
        if would_change(planned.cluster, observation):
            changed[planned.cluster.pk] = (planned, observation)
    recorded = 0
    pks = sorted(changed)
    for start in range(0, len(pks), RECORD_BATCH):
        with transaction.atomic():
            rows = (
                Cluster.unscoped_all_tenants.select_for_update(of=("self",))
                .select_related("organization")
                .filter(pk__in=pks[start : start + RECORD_BATCH])
            )
            for row in rows:
                planned, observation = changed[row.pk]
                generation = planned.spec.generation
                if row.generation != generation or not _idle(row, timezone.now()):
                    continue  # changed or taken since the reading: its run records it
                with tenant_scope(row.organization):
                    record_observation(row, generation=generation, observation=observation)
                recorded += 1
    return recorded


def would_change(cluster: Cluster, observation: Observation) -> bool:
    """Whether recording the observation (of the cluster's current generation) would change
    the cluster's row: its state, conditions, address or failure."""
    if observation.conditions != cluster.conditions:
        return True
    if observation.ready:
        settled = ClusterState.THROTTLED if cluster.throttled_since else ClusterState.READY
        return (
            cluster.state != settled
            or cluster.observed_generation < cluster.generation
            or cluster.bootstrap_servers != observation.bootstrap_servers
            or cluster.bootstrap_tls != observation.bootstrap_tls
        )
    if observation.failed:
        return (cluster.state, cluster.failure_reason, cluster.failure_message) != (
            ClusterState.FAILED,
            observation.reason,
            observation.message,
        )
    # Still working: a provisioning or updating cluster stays so.
    return cluster.state not in (ClusterState.PROVISIONING, ClusterState.UPDATING)
