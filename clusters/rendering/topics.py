"""A cluster's topics as ``KafkaTopic``s: named per ``clusters.naming``, with retention capped by
the tier (and, on a shared Kafka, each partition's size bounded by its share of the storage)."""

from __future__ import annotations

from clusters.naming import KAFKA_API_VERSION, kafka_topic_name, topic_resource_name
from clusters.specs import ClusterSpec, Kind, TopicSpec

from .common import default_retention_ms, metadata


def kafka_topic(spec: ClusterSpec, topic: TopicSpec) -> dict:
    return {
        "apiVersion": KAFKA_API_VERSION,
        "kind": "KafkaTopic",
        "metadata": metadata(spec, topic_resource_name(spec, topic.name), strimzi_cluster=True),
        "spec": {
            "topicName": kafka_topic_name(spec, topic.name),
            "partitions": topic.partitions,
            "replicas": topic.replicas,
            "config": _topic_config(spec, topic),
        },
    }


def _topic_config(spec: ClusterSpec, topic: TopicSpec) -> dict:
    config = dict(sorted(topic.config.items()))
    ceiling = spec.limits.max_retention_ms
    retention = config.get("retention.ms")
    if retention is None:
        # The shared Kafka's own default may exceed this cluster's tier; a dedicated Kafka's
        # log.retention.ms already holds the default.
        if spec.kind == Kind.SERVERLESS:
            config["retention.ms"] = str(default_retention_ms(spec.limits))
    else:
        try:
            requested = int(retention)
        except ValueError:
            requested = None  # not a number: Kafka rejects it, nothing to cap
        if requested is not None and (requested < 0 or requested > ceiling):
            config["retention.ms"] = str(ceiling)  # -1 is unlimited: capped as well
    if spec.kind == Kind.SERVERLESS:
        # On a shared Kafka the tier's storage limit holds per partition: unset, unlimited (-1)
        # or above it, a partition keeps at most its share. A dedicated cluster fills only its
        # own volumes, sized from its tier.
        partition_ceiling = spec.limits.max_partition_retention_bytes
        requested = _integer(config.get("retention.bytes"))
        if requested is None or not 0 <= requested <= partition_ceiling:
            config["retention.bytes"] = str(partition_ceiling)
    return config


def _integer(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
