"""The control plane's figures on its own /metrics (``foundation.metrics``'s registry, from
``ControlPlaneConfig.ready``): each Celery queue's waiting tasks, read from the broker at each
scrape (the queues of ``CELERY_TASK_QUEUES``, and the default one), as the fleet dashboard
reads them. An unreachable broker serves no lengths and marks the collector down."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from foundation.metrics import gauge, register_scrape_collector

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


def register() -> None:
    register_scrape_collector("celery_queues", queue_figures)
