"""The lifecycle of a cluster: its states and the transitions between them, and what goes with
each one: the generation of the desired state, the Operations that follow a change, and the
reconcile queued once the change has committed.

This module is the only writer of a Cluster's ``state``, ``generation`` and
``observed_generation``. The services (what a caller asks for) and the reconciler (what the
data plane reports) call one function per transition; each looks its transition up in
TRANSITIONS and refuses one the table does not allow (a programming error: what a caller may
not do is refused before, by the services, with a problem code).

    state \\ on     change   reshape  deletion  retry  ready    pending  failure  deleted
    requested     =        U        D         -      R|U|T    P        F        -
    provisioning  =        U        D         -      R|U|T    P        F        -
    ready         U        U        D         -      R|U|T    U        F        -
    updating      =        U        D         -      R|U|T    P|U      F        -
    failed        =        U        D         P|U    R|U|T    P|U      F        -
    throttled     U        U        D         -      R|U|T    U        F        -
    deleting      -        -        =         -      =        =        =        X
    deleted       -        -        -         -      -        -        -        -

    R ready, P provisioning (nothing converged yet), U updating, F failed, T throttled,
    D deleting, X deleted; "=" stays, "-" refused; where several are allowed the data decides.
    The columns are the functions request_change, request_reshape, request_deletion,
    request_retry (what a caller asks for), record_ready, record_pending, record_failure and
    record_deleted (what the data plane reports).

A cluster starts ``requested`` at generation 1. A run that applied a generation older than a
deletion request leaves the cluster ``deleting``: only its deletion takes it out.
``throttled`` is ``ready`` for a cluster whose organization (or itself) reached its spend cap:
its principals are served at the throttle floors, growth is refused, nothing is deleted.
``request_throttle`` and ``request_unthrottle`` (billing's spend caps) mark it and start a new
generation, which the reconciler renders with the floors (or without); a converged run then
records it ``throttled`` while the mark holds, ``ready`` once it is gone.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from enum import StrEnum

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

from foundation.tasks import enqueue
from tenants.audit import Actor, audit_record
from tenants.models import AuditEvent

from .models import Cluster, ClusterState, Operation, OperationState

log = logging.getLogger(__name__)


class Event(StrEnum):
    CHANGE = "change"  # what the data plane holds changes: a topic, a credential
    RESHAPE = "reshape"  # the cluster's tier or size changes
    DELETION = "deletion"  # the cluster is to be deleted
    RETRY = "retry"  # a failed cluster is tried again
    READY = "ready"  # the data plane converged to the generation a run applied
    PENDING = "pending"  # the data plane is still working on it
    FAILURE = "failure"  # the data plane reported a failure
    DELETED = "deleted"  # the data plane holds nothing of the cluster any more


REQUESTED = ClusterState.REQUESTED
PROVISIONING = ClusterState.PROVISIONING
READY = ClusterState.READY
UPDATING = ClusterState.UPDATING
FAILED = ClusterState.FAILED
THROTTLED = ClusterState.THROTTLED
DELETING = ClusterState.DELETING
DELETED = ClusterState.DELETED

# Per state, per event, the states the cluster may move to (the module docstring's table).
TRANSITIONS: dict[ClusterState, dict[Event, frozenset[ClusterState]]] = {
    REQUESTED: {
        Event.CHANGE: frozenset({REQUESTED}),
        Event.RESHAPE: frozenset({UPDATING}),
        Event.DELETION: frozenset({DELETING}),
        Event.READY: frozenset({READY, UPDATING, THROTTLED}),
        Event.PENDING: frozenset({PROVISIONING}),
        Event.FAILURE: frozenset({FAILED}),
    },
    PROVISIONING: {
        Event.CHANGE: frozenset({PROVISIONING}),
        Event.RESHAPE: frozenset({UPDATING}),
        Event.DELETION: frozenset({DELETING}),
        Event.READY: frozenset({READY, UPDATING, THROTTLED}),
        Event.PENDING: frozenset({PROVISIONING}),
        Event.FAILURE: frozenset({FAILED}),
    },
    READY: {
        Event.CHANGE: frozenset({UPDATING}),
        Event.RESHAPE: frozenset({UPDATING}),
        Event.DELETION: frozenset({DELETING}),
        Event.READY: frozenset({READY, UPDATING, THROTTLED}),
        Event.PENDING: frozenset({UPDATING}),
        Event.FAILURE: frozenset({FAILED}),
    },
    UPDATING: {
        Event.CHANGE: frozenset({UPDATING}),
        Event.RESHAPE: frozenset({UPDATING}),
        Event.DELETION: frozenset({DELETING}),
        Event.READY: frozenset({READY, UPDATING, THROTTLED}),
        Event.PENDING: frozenset({PROVISIONING, UPDATING}),
        Event.FAILURE: frozenset({FAILED}),
    },
    # The periodic resync runs failed clusters too: the data plane may have recovered.
    FAILED: {
        Event.CHANGE: frozenset({FAILED}),
        Event.RESHAPE: frozenset({UPDATING}),
        Event.DELETION: frozenset({DELETING}),
        Event.RETRY: frozenset({PROVISIONING, UPDATING}),
        Event.READY: frozenset({READY, UPDATING, THROTTLED}),
        Event.PENDING: frozenset({PROVISIONING, UPDATING}),
        Event.FAILURE: frozenset({FAILED}),
    },
    THROTTLED: {
        Event.CHANGE: frozenset({UPDATING}),
        Event.RESHAPE: frozenset({UPDATING}),
        Event.DELETION: frozenset({DELETING}),
        Event.READY: frozenset({READY, UPDATING, THROTTLED}),
        Event.PENDING: frozenset({UPDATING}),
        Event.FAILURE: frozenset({FAILED}),
    },
    DELETING: {
        Event.DELETION: frozenset({DELETING}),
        Event.READY: frozenset({DELETING}),
        Event.PENDING: frozenset({DELETING}),
        Event.FAILURE: frozenset({DELETING}),
        Event.DELETED: frozenset({DELETED}),
    },
    DELETED: {},
}


class IllegalTransition(Exception):
    """The code asked for a transition TRANSITIONS does not allow: a bug, not a user error."""


def next_state(cluster: Cluster, event: Event, wanted: str | None = None) -> ClusterState:
    """The state ``event`` moves the cluster to: the one the table allows, or, where it allows
    several, ``wanted``."""
    allowed = TRANSITIONS[ClusterState(cluster.state)].get(event, frozenset())
    if len(allowed) == 1:
        (only,) = allowed
        return only
    if wanted not in allowed:
        raise IllegalTransition(
            f"cluster {cluster.public_id}: {event} does not move a {cluster.state} cluster to "
            f"{wanted or 'any state'}"
        )
    return ClusterState(wanted)


def _working(cluster: Cluster) -> ClusterState:
    """Provisioning until the data plane first converged, then updating."""
    return PROVISIONING if cluster.observed_generation == 0 else UPDATING


def _new_generation(cluster: Cluster, event: Event, wanted: str | None = None) -> None:
    cluster.state = next_state(cluster, event, wanted)
    cluster.generation += 1


# What a caller asks for -----------------------------------------------------------------------


def open_cluster(cluster: Cluster, *, actor: Actor, event: AuditEvent | None = None) -> Operation:
    """A cluster just written, in its first state (``requested``, generation 1: the model's
    defaults): the Operation that follows its creation, and its first reconcile."""
    if cluster.state != REQUESTED or cluster.generation != 1:
        raise IllegalTransition(f"cluster {cluster.public_id} is not new")
    return _open_operation(cluster, kind="cluster.create", actor=actor, event=event)


def request_change(
    cluster: Cluster, *, kind: str, actor: Actor, event: AuditEvent | None = None
) -> Operation:
    """What the cluster's data plane holds changed (a topic, a credential): a new generation.
    ``event`` is the change's audit event, which the operation shows."""
    _new_generation(cluster, Event.CHANGE)
    cluster.save(update_fields=["generation", "state", "updated_at"])
    return _open_operation(cluster, kind=kind, actor=actor, event=event)


def request_throttle(cluster: Cluster, *, reason: str, actor: Actor) -> Operation | None:
    """Mark the cluster throttled (``reason`` is shown to its users) and start the generation
    that renders its quotas at the floors; ``None`` if it already was (the reason is kept up to
    date)."""
    if cluster.throttled_since is not None:
        if cluster.throttle_reason != reason:
            cluster.throttle_reason = reason
            cluster.save(update_fields=["throttle_reason", "updated_at"])
        return None
    cluster.throttled_since = timezone.now()
    cluster.throttle_reason = reason
    _new_generation(cluster, Event.CHANGE)
    cluster.save(
        update_fields=["throttled_since", "throttle_reason", "generation", "state", "updated_at"]
    )
    return _open_operation(cluster, kind="cluster.throttle", actor=actor)


def request_unthrottle(cluster: Cluster, *, actor: Actor) -> Operation | None:
    """Lift the throttle: a new generation with the cluster's own quotas; ``None`` if it was
    not throttled."""
    if cluster.throttled_since is None:
        return None
    cluster.throttled_since = None
    cluster.throttle_reason = ""
    _new_generation(cluster, Event.CHANGE)
    cluster.save(
        update_fields=["throttled_since", "throttle_reason", "generation", "state", "updated_at"]
    )
    return _open_operation(cluster, kind="cluster.unthrottle", actor=actor)


def request_reshape(
    cluster: Cluster, *, actor: Actor, event: AuditEvent | None = None
) -> Operation:
    """The cluster's tier or capacity changed (the caller saved them): a new generation."""
    _new_generation(cluster, Event.RESHAPE)
    cluster.save(update_fields=["generation", "state", "updated_at"])
    return _open_operation(cluster, kind="cluster.update", actor=actor, event=event)


def request_deletion(
    cluster: Cluster, *, actor: Actor, event: AuditEvent | None = None
) -> Operation:
    """The first request marks the cluster for deletion (a new generation); a repeated one
    gets an Operation of its own that ends with the same deletion."""
    if cluster.delete_requested_at is None:
        _new_generation(cluster, Event.DELETION)
        cluster.delete_requested_at = timezone.now()
        cluster.save(update_fields=["delete_requested_at", "generation", "state", "updated_at"])
    else:
        next_state(cluster, Event.DELETION)  # deleting stays deleting; refused from deleted
    return _open_operation(cluster, kind="cluster.delete", actor=actor, event=event)


def request_retry(cluster: Cluster, *, actor: Actor, event: AuditEvent | None = None) -> Operation:
    """A failed cluster tried again: the same desired state, a fresh attempt."""
    _new_generation(cluster, Event.RETRY, _working(cluster))
    cluster.failure_reason = cluster.failure_message = ""
    cluster.reconcile_attempts = 0
    cluster.save()
    return _open_operation(cluster, kind="cluster.retry", actor=actor, event=event)


def _open_operation(
    cluster: Cluster, *, kind: str, actor: Actor, event: AuditEvent | None = None
) -> Operation:
    """The Operation that follows a change, and a reconcile queued once the change commits."""
    # A newer change supersedes what an unfinished one asked for: the reconciler converges to
    # the latest generation, and the older operation ends when that one does.
    operation = Operation.objects.create(
        organization=cluster.organization,
        cluster=cluster,
        kind=kind,
        target_generation=cluster.generation,
        requested_by=actor.label,
        audit_event=event,
    )
    cluster_pk = cluster.pk
    # The ids the task is called with, known here: queued without reading them back.
    ids = (cluster.organization.public_id, cluster.public_id)
    transaction.on_commit(lambda: request_reconcile(cluster_pk, ids=ids))
    return operation


# What the data plane reports (the reconciler, on the row its lease holds, locked) -------------


def record_ready(
    cluster: Cluster, *, generation: int, bootstrap_servers: str, bootstrap_tls: bool
) -> None:
    """The data plane converged to ``generation``: ready, or still updating when the cluster
    changed while the run worked. Ends the operations it answers."""
    changed = cluster.generation != generation
    settled = THROTTLED if cluster.throttled_since else READY
    cluster.state = next_state(cluster, Event.READY, UPDATING if changed else settled)
    cluster.observed_generation = max(cluster.observed_generation, generation)
    cluster.bootstrap_servers = bootstrap_servers
    cluster.bootstrap_tls = bootstrap_tls
    cluster.failure_reason = cluster.failure_message = ""
    cluster.reconcile_attempts = 0
    cluster.save()
    _finish_operations(cluster)


def record_pending(cluster: Cluster) -> None:
    """Applied; the data plane is still working on it."""
    cluster.state = next_state(cluster, Event.PENDING, _working(cluster))
    cluster.reconcile_attempts += 1
    cluster.save()


def record_failure(cluster: Cluster, *, generation: int, reason: str, message: str) -> None:
    """The data plane failed ``generation``: the operations up to it fail, not those of a newer
    one it has not seen yet (that one gets its own run)."""
    cluster.state = next_state(cluster, Event.FAILURE)
    cluster.failure_reason = reason
    cluster.failure_message = message
    cluster.save()
    _fail_operations(cluster, code=reason, message=message, generation=generation)


def record_deleted(cluster: Cluster, *, generation: int, actor: Actor) -> None:
    """The data plane holds nothing of the cluster any more: it, its topics and credentials
    are deleted."""
    now = timezone.now()
    cluster.state = next_state(cluster, Event.DELETED)
    cluster.deleted_at = now
    cluster.observed_generation = max(cluster.observed_generation, generation)
    cluster.bootstrap_servers = ""
    cluster.save()
    cluster.topics.filter(deleted_at__isnull=True).update(deleted_at=now)
    cluster.credentials.filter(deleted_at__isnull=True).update(deleted_at=now)
    _finish_operations(cluster)
    audit_record(
        organization=cluster.organization, actor=actor, action="cluster.deleted", target=cluster
    )


def _open_operations(cluster: Cluster):
    return Operation.objects.filter(
        cluster=cluster, state__in=[OperationState.PENDING, OperationState.RUNNING]
    )


def _finish_operations(cluster: Cluster) -> None:
    """Succeed the open operations the observed generation answers."""
    _open_operations(cluster).filter(target_generation__lte=cluster.observed_generation).update(
        state=OperationState.SUCCEEDED, finished_at=timezone.now()
    )


def _fail_operations(cluster: Cluster, *, code: str, message: str, generation: int) -> None:
    _open_operations(cluster).filter(target_generation__lte=generation).update(
        state=OperationState.FAILED,
        error_code=code,
        error_message=message,
        finished_at=timezone.now(),
    )


# The reconcile queue ----------------------------------------------------------------------------

# Queued by name: the task module calls the reconciler, which calls this module.
RECONCILE_TASK = "clusters.tasks.reconcile_cluster"

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


def task_arguments(cluster_pk: int, ticket: str) -> dict[str, str] | None:
    """What a reconcile task is called with: public ids, the organization's naming the tenant
    scope it runs in. None when there is no such cluster."""
    ids = (
        Cluster.unscoped_all_tenants.filter(pk=cluster_pk)
        .values_list("organization__public_id", "public_id")
        .first()
    )
    if ids is None:
        return None
    return {"organization": ids[0], "cluster": ids[1], "ticket": ticket}


def request_reconcile(cluster_pk: int, *, ids: tuple[str, str] | None = None) -> bool:
    """Queue a reconcile of the cluster unless one is queued already. Whatever called this has
    committed: a broker that cannot take the task is logged, not raised, and the periodic
    resync queues the run once the broker is back. ``ids`` are the organization's and the
    cluster's public ids when the caller has them. True when a task was sent."""
    ticket = reserve_reconcile(cluster_pk)
    if ticket is None:
        return False
    if ids is None:
        arguments = task_arguments(cluster_pk, ticket)
    else:
        arguments = {"organization": ids[0], "cluster": ids[1], "ticket": ticket}
    if arguments is None:
        return False
    try:
        enqueue(RECONCILE_TASK, **arguments)
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
