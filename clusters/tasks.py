"""Celery tasks of the clusters app: thin, loading by id and calling the reconciler."""

import random

from celery import shared_task

from . import reconciler
from .reconciler import Outcome

# Pending clusters are looked at again soon, then less often; errors back off further.
PENDING_BACKOFF_CAP = 30.0
ERROR_BACKOFF_CAP = 60.0


def _backoff(retries: int, *, first: float, cap: float) -> float:
    delay = min(cap, first * 2**retries)
    return delay * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security


@shared_task(bind=True, name="clusters.tasks.reconcile_cluster", max_retries=200)
def reconcile_cluster(self, cluster_pk: int) -> str:
    try:
        outcome = reconciler.reconcile(cluster_pk)
    except Exception as error:  # the data plane or its API is unreachable: try again later
        if self.request.is_eager:
            raise
        raise self.retry(
            exc=error, countdown=_backoff(self.request.retries, first=1.0, cap=ERROR_BACKOFF_CAP)
        ) from error
    if outcome in (Outcome.PENDING, Outcome.BUSY) and not self.request.is_eager:
        raise self.retry(
            countdown=_backoff(self.request.retries, first=0.5, cap=PENDING_BACKOFF_CAP)
        )
    return outcome.value


@shared_task(name="clusters.tasks.reconcile_fleet")
def reconcile_fleet() -> int:
    """Re-run every live cluster: repairs drift, and finishes what a lost task left."""
    cluster_pks = reconciler.clusters_to_reconcile()
    for cluster_pk in cluster_pks:
        reconcile_cluster.delay(cluster_pk)
    return len(cluster_pks)
