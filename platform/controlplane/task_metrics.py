"""How the Celery tasks end and how long they run, for the control plane's /metrics.

Workers run in other processes (other pods) than the web process that serves /metrics, so each
task's end is counted in Redis, where any web process reads it at scrape time: per task name,
how many ended in each state (SUCCESS, FAILURE, RETRY…) and a histogram of their run times
(cumulative buckets, as Prometheus's histograms are). Redis's counters only grow; Prometheus
reads a reset (Redis emptied) as a counter reset. One pipelined round trip per task; a Redis
that does not answer loses that count and never fails the task. Without Redis (``make run``'s
file-system broker) nothing is counted.

A task killed by its hard time limit, or with its worker, never reaches ``task_postrun``: it
is not counted here (the queue's length and the reconcile lag show what it left undone)."""

from __future__ import annotations

import logging
import math
import time
from functools import cache

from celery.signals import task_postrun, task_prerun
from django.conf import settings

log = logging.getLogger("sluice.metrics")

OUTCOMES_KEY = "sluice:metrics:celery:outcomes"
BUCKETS_KEY = "sluice:metrics:celery:buckets"
SECONDS_KEY = "sluice:metrics:celery:seconds"
# From a quick notification to a whole reconcile or month close (the time limit is 300 s).
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, math.inf)
SEPARATOR = "\t"  # between a task's name and a state or bucket in a hash's field

_started: dict[str, float] = {}


@cache
def _redis(url: str):
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)


def bucket_label(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(bound)


def record(task_name: str, state: str, seconds: float) -> None:
    """Count one task's end in Redis (nothing without Redis; a failure is logged, not
    raised)."""
    if not settings.REDIS_URL:
        return
    try:
        pipe = _redis(settings.REDIS_URL).pipeline(transaction=True)  # a scrape sees all or none
        pipe.hincrby(OUTCOMES_KEY, f"{task_name}{SEPARATOR}{state}", 1)
        for bound in BUCKETS:
            if seconds <= bound:
                pipe.hincrby(BUCKETS_KEY, f"{task_name}{SEPARATOR}{bucket_label(bound)}", 1)
        pipe.hincrbyfloat(SECONDS_KEY, task_name, seconds)
        pipe.execute()
    except Exception:  # a count lost is better than a task failed
        log.warning("could not count the end of task %s", task_name, exc_info=True)


@task_prerun.connect
def _task_started(task_id=None, **kwargs) -> None:
    _started[task_id] = time.monotonic()


@task_postrun.connect
def _task_ended(task_id=None, task=None, state=None, **kwargs) -> None:
    started = _started.pop(task_id, None)
    if started is None or task is None:
        return
    record(task.name, state or "UNKNOWN", time.monotonic() - started)


def read() -> tuple[dict[tuple[str, str], int], dict[str, dict[str, int]], dict[str, float]]:
    """What Redis holds: ``{(task, state): count}``, ``{task: {bucket: count}}`` and
    ``{task: seconds in all}`` (all empty without Redis)."""
    if not settings.REDIS_URL:
        return {}, {}, {}
    pipe = _redis(settings.REDIS_URL).pipeline(transaction=True)
    pipe.hgetall(OUTCOMES_KEY)
    pipe.hgetall(BUCKETS_KEY)
    pipe.hgetall(SECONDS_KEY)
    outcomes_raw, buckets_raw, seconds_raw = pipe.execute()
    outcomes = {
        tuple(field.decode().split(SEPARATOR, 1)): int(count)
        for field, count in outcomes_raw.items()
    }
    buckets: dict[str, dict[str, int]] = {}
    for field, count in buckets_raw.items():
        task_name, bound = field.decode().split(SEPARATOR, 1)
        buckets.setdefault(task_name, {})[bound] = int(count)
    seconds = {field.decode(): float(total) for field, total in seconds_raw.items()}
    return outcomes, buckets, seconds
