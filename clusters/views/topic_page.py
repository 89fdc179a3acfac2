"""A topic's page: its partitions (with the form to add some), replication, retention, cleanup
policy, every config a tenant may set with its value or Kafka's default, and its live size and
traffic (the ``topic-live-metrics`` fragment, loaded by htmx)."""

from __future__ import annotations

from django.http import HttpRequest

from tenants.access import OrganizationAccess
from tenants.views.base import organization_view

from .. import connection, presentation
from ..validation import TOPIC_CONFIGS
from .base import READ, live_cluster, live_topic, render_page

# What Kafka uses for a config the topic does not set (Kafka 4.1's broker defaults).
KAFKA_DEFAULTS = {
    "compression.type": "producer",
    "max.message.bytes": "1048588",
    "message.timestamp.type": "CreateTime",
    "retention.bytes": "-1",
    "delete.retention.ms": "86400000",
    "min.compaction.lag.ms": "0",
    "max.compaction.lag.ms": "9223372036854775807",
    "segment.ms": "604800000",
}


@organization_view(scopes=READ)
def topic_detail(
    request: HttpRequest, access: OrganizationAccess, cluster_id: str, topic_name: str
):
    cluster = live_cluster(access, cluster_id)
    topic = live_topic(cluster, topic_name)
    configs = [
        {"name": name, "value": topic.configs.get(name), "default": KAFKA_DEFAULTS[name]}
        for name in TOPIC_CONFIGS
    ]
    context = {
        "cluster": cluster,
        "topic": topic,
        "kafka_name": connection.kafka_topic_name(cluster, topic.name),
        "retention": presentation.duration_label(topic.retention_ms),
        "configs": configs,
        "being_deleted": cluster.delete_requested_at is not None,
    }
    return render_page(request, access, "clusters/topic_detail.html", context)
