"""What every rendered object shares: its metadata, and Kubernetes' canonical quantities."""

from __future__ import annotations

from clusters.naming import (
    STRIMZI_CLUSTER_LABEL,
    kafka_name,
    labels_for,
    namespace_for,
)
from clusters.specs import ClusterSpec, Limits

GIB = 1024**3
MIB = 1024**2

# Kafka's own default retention (7 days); a tier may only lower it.
KAFKA_DEFAULT_RETENTION_MS = 7 * 24 * 3600 * 1000


def metadata(spec: ClusterSpec, name: str, *, strimzi_cluster: bool = False) -> dict:
    labels = labels_for(spec)
    if strimzi_cluster:
        labels[STRIMZI_CLUSTER_LABEL] = kafka_name(spec)
    return {"name": name, "namespace": namespace_for(spec), "labels": labels}


def default_retention_ms(limits: Limits) -> int:
    return min(KAFKA_DEFAULT_RETENTION_MS, limits.max_retention_ms)


def cpu_quantity(millicores: int) -> str:
    """Kubernetes' canonical form: whole cores without a suffix, otherwise millicores."""
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def byte_quantity(count: int) -> str:
    """Kubernetes' canonical form of a byte count: the largest binary suffix that keeps the
    number whole."""
    if count == 0:
        return "0"
    for suffix, size in (("Ti", 1024**4), ("Gi", GIB), ("Mi", MIB), ("Ki", 1024)):
        if count % size == 0:
            return f"{count // size}{suffix}"
    return str(count)
