"""Whose usage a series is: the clusters a cell metered over a window, and which of them a
series of the cell's Prometheus belongs to.

Series belong to a cluster by where they come from: on a cell's shared Kafka by the topic's
``<cluster_id>.`` prefix, on a dedicated Kafka by its namespace and ``strimzi_io_cluster``
(the naming rules the renderer applies). Kafka's own topics (``__…``) belong to nobody.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q, QuerySet

from clusters.models import Cell, Cluster
from clusters.naming import dedicated_kafka, serverless_prefix, serverless_prefix_of
from clusters.specs import Kind

from .deltas import HOUR, Window

INTERNAL_TOPIC_PREFIX = "__"

# (namespace, Kafka) of a series: the Strimzi Kafka whose broker it was scraped from
Source = tuple[str, str]


def source_of(labels: dict[str, str]) -> Source:
    return labels.get("namespace", ""), labels.get("strimzi_io_cluster", "")


def shared_source(cell: Cell) -> Source:
    return cell.shared_kafka_namespace, cell.shared_kafka_name


@dataclass(frozen=True)
class MeteredCluster:
    pk: int
    public_id: str
    kind: str
    created_at: float
    deleted_at: float | None

    def alive_in(self, hour: int) -> bool:
        return self.created_at < hour + HOUR and (self.deleted_at is None or self.deleted_at > hour)

    @property
    def source(self) -> Source | None:
        """The (namespace, Kafka) whose scrapes this cluster's completeness depends on."""
        if self.kind == Kind.DEDICATED:
            return dedicated_kafka(self.public_id)
        return None  # the cell's shared Kafka


def metered_clusters(cell: Cell, window: Window) -> list[MeteredCluster]:
    """The cell's clusters that existed at some moment of the window."""
    start, end = window.datetimes
    return as_metered(
        Cluster.unscoped_all_tenants.filter(cell=cell, created_at__lt=end).filter(
            Q(deleted_at__isnull=True) | Q(deleted_at__gt=start)
        )
    )


def as_metered(clusters: QuerySet[Cluster]) -> list[MeteredCluster]:
    """The clusters of a query as metering sees them (reading only these columns)."""
    rows = clusters.values_list("pk", "public_id", "tier__kind", "created_at", "deleted_at")
    return [
        MeteredCluster(
            pk, public_id, kind, created.timestamp(), deleted.timestamp() if deleted else None
        )
        for pk, public_id, kind, created, deleted in rows
    ]


class Attribution:
    """Which cluster a series of the cell's Prometheus belongs to, if any."""

    def __init__(self, cell: Cell, clusters: list[MeteredCluster]) -> None:
        self.shared = shared_source(cell)
        self.by_prefix = {serverless_prefix(c.public_id): c.pk for c in clusters}
        self.by_source = {dedicated_kafka(c.public_id): c.pk for c in clusters}

    def cluster_of(self, labels: dict[str, str]) -> int | None:
        topic = labels.get("topic", "")
        if not topic or topic.startswith(INTERNAL_TOPIC_PREFIX):
            return None
        source = source_of(labels)
        if source == self.shared:
            return self.by_prefix.get(serverless_prefix_of(topic))
        return self.by_source.get(source)
