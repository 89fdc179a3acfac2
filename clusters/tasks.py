"""Celery tasks of the clusters app: thin, loading by id and calling the reconciler."""

import random

from celery import shared_task

from . import reconciler, services

# Pending clusters are looked at again soon, then less often; errors back off further.
PENDING_BACKOFF_CAP = 30.0
ERROR_BACKOFF_CAP = 60.0


def _backoff(retries: int, *, first: float, cap: float) -> float:
    delay = min(cap, first * 2**retries)
    return delay * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security


# Nobody waits for a reconcile's result: not subscribing to it also keeps a request that
# queues one from waiting on a result store that is down with the broker.
@shared_task(
    bind=True, name="clusters.tasks.reconcile_cluster", max_retries=200, ignore_result=True
)
def reconcile_cluster(self, cluster_pk: int, ticket: str = "") -> str:
    """One run; ``ticket`` names the queued run this task is (services.request_reconcile).
    Only a run that found the data plane still working, or could not reach it, queues the
    next one; a busy or superseded one ends: the run holding the cluster answers for it."""
    eager = self.request.is_eager
    countdown = _backoff(self.request.retries, first=0.5, cap=PENDING_BACKOFF_CAP)
    next_ticket: list[str | None] = []

    def reserve_next() -> None:
        next_ticket.append(services.reserve_reconcile(cluster_pk, countdown=countdown))

    try:
        outcome = reconciler.reconcile(
            cluster_pk, ticket=ticket, if_pending=None if eager else reserve_next
        )
    except Exception as error:  # the data plane or its API is unreachable: try again later
        if eager:
            raise
        _again(self, cluster_pk, first=1.0, cap=ERROR_BACKOFF_CAP, error=error)
        raise
    if next_ticket and next_ticket[0] is not None:  # reserved while the lease was held
        raise self.retry(args=(cluster_pk,), kwargs={"ticket": next_ticket[0]}, countdown=countdown)
    return outcome.value


def _again(task, cluster_pk: int, *, first: float, cap: float, error=None) -> None:
    countdown = _backoff(task.request.retries, first=first, cap=cap)
    ticket = services.reserve_reconcile(cluster_pk, countdown=countdown)
    if ticket is None:  # a run is queued already: it looks again
        return
    raise task.retry(args=(cluster_pk,), kwargs={"ticket": ticket}, countdown=countdown, exc=error)


@shared_task(name="clusters.tasks.reconcile_fleet", ignore_result=True)
def reconcile_fleet() -> int:
    """Queue a run of every live cluster that has none queued: repairs drift, and finishes
    what a lost task or a broker outage left. Safe to run twice at once."""
    return sum(services.request_reconcile(pk) for pk in reconciler.clusters_to_reconcile())
