"""The control plane's figures on its own /metrics (``foundation.metrics``'s registry, from
``ControlPlaneConfig.ready``), read at each scrape:

- each Celery queue's waiting tasks, from the broker (the queues of ``CELERY_TASK_QUEUES``, and
  the default one), as the fleet dashboard reads them; an unreachable broker serves no lengths
  and marks the collector down;
- how the tasks ended and how long they ran, per task name, as the workers counted them in
  Redis (``task_metrics``)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from foundation.metrics import gauge, register_scrape_collector

from . import task_metrics
from .fleet import queue_lengths


class BrokerUnreachable(RuntimeError):
    pass


def queue_figures() -> Iterator[Metric]:
    lengths = queue_lengths()
    for queue in lengths:
        if queue["error"]:
            raise BrokerUnreachable(queue["error"])
    family = gauge(
        "sluice_celery_queue_length", "Tasks waiting in the Celery queue.", labels=["queue"]
    )
    for queue in lengths:
        family.add_metric([queue["name"]], queue["length"])
    yield family


def task_figures() -> Iterator[Metric]:
    outcomes, buckets, seconds = task_metrics.read()
    ended = CounterMetricFamily(
        "sluice_celery_tasks", "Tasks that ended, by task name and state.", labels=["task", "state"]
    )
    for (task_name, state), count in sorted(outcomes.items()):
        ended.add_metric([task_name, state], count)
    yield ended
    durations = HistogramMetricFamily(
        "sluice_celery_task_duration_seconds",
        "How long the tasks ran, by task name.",
        labels=["task"],
    )
    for task_name in sorted(buckets):
        counts = buckets[task_name]
        durations.add_metric(
            [task_name],
            buckets=[
                (label, counts.get(label, 0))
                for label in map(task_metrics.bucket_label, task_metrics.BUCKETS)
            ],
            sum_value=seconds.get(task_name, 0.0),
        )
    yield durations


def register() -> None:
    register_scrape_collector("celery_queues", queue_figures)
    register_scrape_collector("celery_tasks", task_figures)
