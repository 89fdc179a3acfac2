"""Celery tasks of the clusters app: thin, loading by id and calling the reconciler.

A run of one cluster is called with public ids, ``organization=`` and ``cluster=``, and works
inside that organization's scope (tenants.tasks.TenantTask); lifecycle.request_reconcile
queues it by name. The fleet-wide resync reads across tenants.
"""

import random

from celery import shared_task

from tenants.tasks import TenantTask

from . import lifecycle, reconciler, resync
from .models import Cell, Cluster

# Pending clusters are looked at again soon, then less often; errors back off further. The
# look after a run that applied is cheap (it only reads the status back: see
# reconciler.reconcile), and a serverless cluster's objects are usually ready by then.
PENDING_FIRST_LOOK = 0.1
PENDING_BACKOFF_CAP = 30.0
ERROR_BACKOFF_CAP = 60.0
# Beat sweeps every 60 s (controlplane.celery).
RESYNC_EXPIRES_SECONDS = 55


def _backoff(retries: int, *, first: float, cap: float) -> float:
    delay = min(cap, first * 2**retries)
    return delay * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security


class ClusterRunTask(TenantTask):
    """A TenantTask that also takes a run queued before runs were called with public ids:
    ``(cluster_pk,)`` and a ticket. Accepted for one release, so that the runs queued when
    it is deployed are not lost; the ids are looked up and the run goes on as a new one."""

    abstract = True

    def __call__(self, *args, **kwargs):
        if args:
            arguments = lifecycle.task_arguments(args[0], kwargs.get("ticket", ""))
            if arguments is None:
                return reconciler.Outcome.GONE.value
            kwargs = arguments
        return super().__call__(**kwargs)


# Nobody waits for a reconcile's result: not subscribing to it also keeps a request that
# queues one from waiting on a result store that is down with the broker.
@shared_task(
    bind=True,
    base=ClusterRunTask,
    name=lifecycle.RECONCILE_TASK,
    max_retries=200,
    ignore_result=True,
)
def reconcile_cluster(
    self, *, organization, cluster: str, ticket: str = "", applied: int | None = None
) -> str:
    """One run; ``ticket`` names the queued run this task is (lifecycle.request_reconcile),
    ``applied`` the generation the run before it applied and found still in the works (see
    reconciler.reconcile). Only a run that found the data plane still working, or could not
    reach it, queues the next one; a busy or superseded one ends: the run holding the cluster
    answers for it."""
    cluster_pk = Cluster.objects.filter(public_id=cluster).values_list("pk", flat=True).first()
    if cluster_pk is None:
        return reconciler.Outcome.GONE.value
    eager = self.request.is_eager
    countdown = _backoff(self.request.retries, first=PENDING_FIRST_LOOK, cap=PENDING_BACKOFF_CAP)
    next_ticket: list[str | None] = []
    next_applied: list[int | None] = []

    def reserve_next(applied_now: int | None) -> None:
        next_ticket.append(lifecycle.reserve_reconcile(cluster_pk, countdown=countdown))
        next_applied.append(applied_now)

    try:
        outcome = reconciler.reconcile(
            cluster_pk,
            ticket=ticket,
            if_pending=None if eager else reserve_next,
            applied=applied,
        )
    except Exception as error:  # the data plane or its API is unreachable: try again later
        if eager:
            raise
        _again(self, organization, cluster_pk, cluster, error=error)
        raise
    if next_ticket and next_ticket[0] is not None:  # reserved while the lease was held
        raise self.retry(
            args=(),
            kwargs=_arguments(organization, cluster, next_ticket[0], applied=next_applied[0]),
            countdown=countdown,
        )
    return outcome.value


def _arguments(organization, cluster: str, ticket: str, *, applied: int | None = None) -> dict:
    arguments = {"organization": organization.public_id, "cluster": cluster, "ticket": ticket}
    if applied is not None:
        arguments["applied"] = applied
    return arguments


def _again(task, organization, cluster_pk: int, cluster: str, *, error) -> None:
    countdown = _backoff(task.request.retries, first=1.0, cap=ERROR_BACKOFF_CAP)
    ticket = lifecycle.reserve_reconcile(cluster_pk, countdown=countdown)
    if ticket is None:  # a run is queued already: it looks again
        return
    raise task.retry(
        args=(), kwargs=_arguments(organization, cluster, ticket), countdown=countdown, exc=error
    )


@shared_task(name="clusters.tasks.reconcile_fleet", ignore_result=True)
def reconcile_fleet() -> int:
    """Beat's sweep: a run of every cluster with work outstanding and none queued (finishes
    what a lost task or a broker outage left), then each cell's resync (repairs drift and
    reads status by listing, clusters.resync). Safe to run twice at once."""
    queued = sum(
        lifecycle.request_reconcile(pk)
        for pk in reconciler.clusters_to_reconcile(outstanding_only=True)
    )
    for slug in Cell.objects.values_list("slug", flat=True):
        # Not run after the next sweep has queued its own.
        resync_cell.apply_async(kwargs={"cell": slug}, expires=RESYNC_EXPIRES_SECONDS)
    return queued


@shared_task(name="clusters.tasks.resync_cell", ignore_result=True)
def resync_cell(*, cell: str) -> dict:
    """One resync of the cell (by slug); a pass already running covers this one."""
    found = Cell.objects.filter(slug=cell).first()
    if found is None:
        return {"cell": cell, "missing": True}
    return resync.resync_cell(found).summary()
