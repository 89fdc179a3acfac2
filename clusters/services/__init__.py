"""Writes of the clusters app, by sub-domain: clusters, topics, credentials, quotas, placement,
consumer groups' offsets (written to Kafka directly, not through a generation).
Every change to what the data plane should hold goes through the lifecycle (clusters.lifecycle):
a new generation, an Operation, and a reconcile queued once the transaction has committed.
Creating a cluster or a topic, and reshaping a cluster, first asks the creation guards that
higher apps registered (clusters.guards), which may refuse it."""

from .clusters import (
    cluster_create,
    cluster_delete,
    cluster_retry,
    cluster_update,
    refuse_closing_with_clusters,
)
from .consumer_groups import consumer_group_reset_offsets
from .credentials import (
    credential_create,
    credential_delete,
    credential_rotate,
    credential_update_quotas,
)
from .placement import CapacityUnavailable
from .throttling import clusters_throttle_set, throttleable
from .topics import topic_create, topic_delete, topic_update

__all__ = [
    "CapacityUnavailable",
    "cluster_create",
    "cluster_delete",
    "cluster_retry",
    "cluster_update",
    "clusters_throttle_set",
    "consumer_group_reset_offsets",
    "credential_create",
    "credential_delete",
    "credential_rotate",
    "credential_update_quotas",
    "refuse_closing_with_clusters",
    "throttleable",
    "topic_create",
    "topic_delete",
    "topic_update",
]
