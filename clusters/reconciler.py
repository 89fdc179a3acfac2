"""The reconciler: make the data plane hold what the database says a cluster should be, and
record what the data plane reports back.

Level-triggered and idempotent: it reads the whole desired state each time, renders it, applies
it (server-side apply: applying twice changes nothing), reads status, and writes the result.
Interrupted after any write, the next run converges to the same state. One run per cluster at a
time, by a lease on the cluster row; a crashed holder's lease expires. The lease is fenced: each
acquisition bumps the row's token, and a run writes to the database or the data plane only while
the row still carries its token and the lease has not expired, so a run that outlived its lease
cannot undo what a newer one did. What it records of the cluster's state goes through
clusters.lifecycle, which owns the transitions.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from foundation import secretbox
from tenants.audit import Actor
from tenants.scoping import tenant_scope

from . import lifecycle
from .desired_state import CredentialUnreadable, build_spec
from .drivers import driver_for
from .drivers.base import Observation
from .models import Cluster, ClusterState, new_sealed_password
from .specs import ClusterSpec

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)
SYSTEM = Actor(system="reconciler")


class Outcome(StrEnum):
    CONVERGED = "converged"  # ready at the desired generation, or deleted
    PENDING = "pending"  # applied; the data plane is still working: look again soon
    FAILED = "failed"  # the data plane reported a failure: waits for a retry or a change
    BUSY = "busy"  # another run holds the cluster: it runs once more when it ends
    SUPERSEDED = "superseded"  # another queued run replaced this one
    STALE = "stale"  # the run lost its lease part-way: it wrote nothing more
    GONE = "gone"  # no such cluster, or deleted long ago


class LeaseLost(Exception):
    """The run no longer holds the cluster's lease: it must not write anything more."""


# One run --------------------------------------------------------------------------------------


@dataclass
class _Run:
    """What one run was told of the chain before it, and what it did. A run whose predecessor
    applied the generation still desired, and found the operator working on it, only looks;
    one that only looked has the next apply again, so what went missing meanwhile is put back."""

    applied_before: int | None = None  # the generation the previous run applied in full
    applied: int | None = None  # the generation this run applied in full

    def only_looks(self, spec: ClusterSpec) -> bool:
        return self.applied_before is not None and self.applied_before == spec.generation


@dataclass(frozen=True)
class Lease:
    """A run's hold on one cluster, the fencing token that proves it, and what the run knows
    of its chain (see _Run)."""

    cluster_pk: int
    token: int
    run: _Run = field(default_factory=_Run, compare=False)

    def holding(self):
        """The cluster's row, while this lease holds it (else nothing)."""
        return Cluster.unscoped_all_tenants.filter(
            pk=self.cluster_pk, lease_token=self.token, lease_expires_at__gt=timezone.now()
        )

    def check(self) -> None:
        """Called before every write to the data plane."""
        if not self.holding().exists():
            raise LeaseLost(f"cluster {self.cluster_pk}: lease {self.token} lost")

    def locked_cluster(self) -> Cluster:
        """The cluster row, locked until the transaction ends, if this run still holds it:
        the token is compared in the statement that locks the row the run then writes."""
        cluster = self.holding().select_for_update().first()
        if cluster is None:
            raise LeaseLost(f"cluster {self.cluster_pk}: lease {self.token} lost")
        return cluster


def reconcile(
    cluster_pk: int,
    *,
    ticket: str = "",
    if_pending: Callable[[int | None], None] | None = None,
    applied: int | None = None,
) -> Outcome:
    """One run. ``ticket`` is the queued task's (see lifecycle.request_reconcile); without one
    (a direct call) the run does not consume the queued task. ``if_pending`` queues the next
    look when the data plane is still working, given what this run applied (see _Run): it is
    called while the lease is still held, so no fleet resync in between finds the cluster idle
    and starts a second chain. ``applied``: what the run before it in the chain applied."""
    taken = _take_lease(cluster_pk, ticket)
    if not isinstance(taken, Lease):
        return taken
    outcome = None
    run = taken.run
    run.applied_before = applied
    try:
        cluster = (
            Cluster.unscoped_all_tenants.select_related("tier", "cell", "organization")
            .filter(pk=cluster_pk)
            .first()
        )
        if cluster is None or cluster.deleted_at is not None:
            return Outcome.GONE
        with tenant_scope(cluster.organization):
            outcome = _reconcile(cluster, taken)
        return outcome
    except LeaseLost:
        log.warning("reconcile of cluster %s outlived its lease; it wrote nothing more", cluster_pk)
        return Outcome.STALE
    finally:
        if outcome == Outcome.PENDING and if_pending is not None:
            if_pending(run.applied)
        if _release_lease(taken):  # a change came in while this run worked: one more run
            lifecycle.request_reconcile(cluster_pk)


@contextmanager
def lease_held(cluster_pk: int) -> Iterator[Lease | None]:
    """The cluster's lease for work other than a run (the cell's resync): None while a run
    holds it. Given back after, and a run queued if one was asked for meanwhile."""
    taken = _take_lease(cluster_pk, "")
    if not isinstance(taken, Lease):
        yield None
        return
    try:
        yield taken
    finally:
        if _release_lease(taken):
            lifecycle.request_reconcile(cluster_pk)


@transaction.atomic
def _take_lease(cluster_pk: int, ticket: str) -> Lease | Outcome:
    row = (
        Cluster.unscoped_all_tenants.select_for_update()
        .filter(pk=cluster_pk)
        .values("lease_holder", "lease_expires_at", "lease_token", "reconcile_ticket")
        .first()
    )
    if row is None:
        return Outcome.GONE
    if ticket and row["reconcile_ticket"] != ticket:
        return Outcome.SUPERSEDED
    now = timezone.now()
    this_cluster = Cluster.unscoped_all_tenants.filter(pk=cluster_pk)
    if row["lease_holder"] and _still_valid(row["lease_expires_at"], now):
        if ticket:  # the holder answers for this request when it ends
            this_cluster.update(reconcile_ticket="", reconcile_due_at=None, reconcile_wanted=True)
        return Outcome.BUSY
    token = row["lease_token"] + 1
    consumed = {"reconcile_ticket": "", "reconcile_due_at": None} if ticket else {}
    this_cluster.update(
        lease_holder=uuid.uuid4().hex,
        lease_expires_at=now + LEASE,
        lease_token=token,
        reconcile_wanted=False,  # this run reads the latest desired state
        **consumed,
    )
    return Lease(cluster_pk, token)


def _still_valid(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is not None and expires_at >= now


@transaction.atomic
def _release_lease(lease: Lease) -> bool:
    """Give the lease back; True when a run was asked for while this one held it. A run that
    lost its lease leaves the row alone: its new holder answers for what came since."""
    row = (
        Cluster.unscoped_all_tenants.select_for_update()
        .filter(pk=lease.cluster_pk, lease_token=lease.token)
        .values("reconcile_wanted")
        .first()
    )
    if row is None:
        return False
    Cluster.unscoped_all_tenants.filter(pk=lease.cluster_pk).update(
        lease_holder="", lease_expires_at=None, reconcile_wanted=False
    )
    return row["reconcile_wanted"]


def _reconcile(cluster: Cluster, lease: Lease) -> Outcome:
    if cluster.delete_requested_at is not None:
        # A deletion never opens a sealed value, so a lost key never blocks one.
        return _converge(cluster, build_spec(cluster, with_passwords=False), lease)
    if _renew_unreadable_sluice_passwords(cluster, lease):
        lease.run.applied_before = None  # a renewed password is applied by this run
    try:
        spec = build_spec(cluster)
    except CredentialUnreadable as unreadable:
        refusal = _unreadable_observation(unreadable)
        spec = build_spec(cluster, with_passwords=False)
        return _converge(cluster, spec, lease, refusal=refusal)
    return _converge(cluster, spec, lease)


def _renew_unreadable_sluice_passwords(cluster: Cluster, lease: Lease) -> bool:
    """Sluice's own principals' passwords are Sluice's alone: one that no key of the ring opens
    (its key lost) is replaced by a new one, written while the lease holds, and applied by this
    run, rather than failing the cluster as a tenant's unreadable credential does. True when
    one was renewed."""
    renewed_any = False
    for role, sealed in cluster.sealed_sluice_passwords().items():
        try:
            secretbox.unseal(sealed)
        except secretbox.Unreadable:
            column = f"{role}_password_encrypted"
            renewed = new_sealed_password()
            if not lease.holding().update(**{column: renewed}):
                raise LeaseLost(f"cluster {lease.cluster_pk}: lease {lease.token} lost") from None
            setattr(cluster, column, renewed)
            renewed_any = True
    return renewed_any


def _unreadable_observation(unreadable: CredentialUnreadable) -> Observation:
    reason, message = unreadable.reason, str(unreadable)
    condition = {"type": "Ready", "status": "False", "reason": reason, "message": message}
    condition["object"] = ", ".join(unreadable.credential_ids)
    return Observation(
        converged=False,
        ready=False,
        conditions=[condition],
        failed=True,
        reason=reason,
        message=message,
    )


def _converge(
    cluster: Cluster, spec: ClusterSpec, lease: Lease, *, refusal: Observation | None = None
) -> Outcome:
    """Carry ``spec`` out and record what the data plane reports, while ``lease`` holds. With a
    ``refusal``, nothing is applied (pruning would delete what the spec cannot render) and the
    refusal is recorded as the observation."""
    run = lease.run
    driver = driver_for(cluster.cell)
    if cluster.delete_requested_at is not None:
        if not driver.delete(spec, guard=lease.check):
            _record(cluster, lease)
            return Outcome.PENDING
        _mark_deleted(cluster, lease, spec.generation)
        return Outcome.CONVERGED
    if refusal is not None:
        observation = refusal
    elif run.only_looks(spec):
        observation = driver.observe(spec)
    else:
        # Only an earlier desired state can have left objects this one no longer renders, and a
        # generation is observed only after its prune succeeded (a failed prune fails the run).
        driver.apply(
            spec,
            prune=spec.generation > 1 and cluster.observed_generation < spec.generation,
            guard=lease.check,
        )
        run.applied = spec.generation
        observation = driver.observe(spec)
    with transaction.atomic():
        return record_observation(
            lease.locked_cluster(), generation=spec.generation, observation=observation
        )


def record_observation(current: Cluster, *, generation: int, observation: Observation) -> Outcome:
    """Record what the data plane reported for ``generation`` on the cluster's row, locked by
    the caller (a run holding the lease, or the cell's resync: clusters.resync)."""
    current.conditions = observation.conditions
    current.last_reconciled_at = timezone.now()
    if observation.ready:
        lifecycle.record_ready(
            current,
            generation=generation,
            bootstrap_servers=observation.bootstrap_servers,
            bootstrap_tls=observation.bootstrap_tls,
        )
        return Outcome.CONVERGED if current.generation == generation else Outcome.PENDING
    if observation.failed:
        # Only what this run applied failed; a newer generation gets its own run.
        lifecycle.record_failure(
            current,
            generation=generation,
            reason=observation.reason,
            message=observation.message,
        )
        return Outcome.FAILED
    lifecycle.record_pending(current)
    return Outcome.PENDING


def _record(cluster: Cluster, lease: Lease) -> None:
    """A deletion the data plane is still carrying out: when the run looked (the cluster stays
    deleting)."""
    now = timezone.now()
    written = lease.holding().update(last_reconciled_at=now, updated_at=now)
    if not written:
        raise LeaseLost(f"cluster {cluster.pk}: lease {lease.token} lost")


@transaction.atomic
def _mark_deleted(cluster: Cluster, lease: Lease, generation: int) -> None:
    lifecycle.record_deleted(lease.locked_cluster(), generation=generation, actor=SYSTEM)


def clusters_to_reconcile(*, outstanding_only: bool = False) -> list[int]:
    """Every live cluster with no run queued (or whose queued run is long overdue, its task
    lost) and none running (a running one queues its next run itself). ``outstanding_only``
    (beat, beside the cells' resyncs, which repair drift): those being deleted or with a change
    not yet converged, so stragglers finish, work whose task the broker could not take
    included."""
    running = Q(lease_holder__gt="", lease_expires_at__gte=timezone.now())
    clusters = Cluster.unscoped_all_tenants.filter(deleted_at__isnull=True)
    if outstanding_only:
        working = [ClusterState.REQUESTED, ClusterState.PROVISIONING, ClusterState.UPDATING]
        clusters = clusters.filter(
            Q(delete_requested_at__isnull=False)
            | Q(generation__gt=F("observed_generation"))
            | Q(state__in=working)
        )
    return list(
        clusters.filter(lifecycle.not_queued()).exclude(running).values_list("pk", flat=True)
    )
