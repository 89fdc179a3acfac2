"""What tenants may set on their topics, and the checks names and values must pass."""

from __future__ import annotations

import re

from controlplane.errors import InvalidInput

from .models import Cluster
from .specs import Kind
from .tiers import limits_of

TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")
KAFKA_TOPIC_NAME_MAX = 249
DEFAULT_RETENTION_MS = 7 * 24 * 3_600_000

# Topic configs a tenant may set beyond retention and cleanup policy, with their checks.
_COMPRESSION = {"uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"}
TOPIC_CONFIGS = {
    "compression.type": lambda v: v in _COMPRESSION,
    "max.message.bytes": lambda v: v.isdigit() and 1 <= int(v) <= 8_388_608,
    "message.timestamp.type": lambda v: v in {"CreateTime", "LogAppendTime"},
    "retention.bytes": lambda v: v == "-1" or (v.isdigit() and int(v) >= 1),
    "delete.retention.ms": lambda v: v.isdigit() and int(v) <= 7 * 24 * 3_600_000,
    "min.compaction.lag.ms": lambda v: v.isdigit(),
    "max.compaction.lag.ms": lambda v: v.isdigit() and int(v) >= 1,
    "segment.ms": lambda v: v.isdigit() and int(v) >= 600_000,
}


def topic_name(cluster: Cluster, name: str) -> str:
    name = (name or "").strip()
    room = KAFKA_TOPIC_NAME_MAX
    if cluster.cluster_type.kind == Kind.SERVERLESS:
        room -= len(cluster.public_id) + 1  # the "<cluster id>." prefix on the shared Kafka
    if not name or name in {".", ".."} or not TOPIC_NAME.match(name) or len(name) > room:
        raise InvalidInput(
            f"Topic names are 1 to {room} letters, digits, '.', '_' or '-' (not '.' or '..')",
            field="name",
        )
    if name.startswith("__"):
        raise InvalidInput("Names starting with '__' belong to Kafka itself", field="name")
    return name


def retention_ms(cluster: Cluster, value: int | None) -> int:
    maximum = cluster.cluster_type.max_retention_hours * 3_600_000
    if value is None:
        return min(DEFAULT_RETENTION_MS, maximum)
    if value < 60_000 or value > maximum:
        raise InvalidInput(
            f"retention_ms is 60000 to {maximum} on {cluster.cluster_type.name} clusters",
            field="retention_ms",
        )
    return value


def topic_configs(configs: dict | None) -> dict[str, str]:
    cleaned = {}
    for key, value in (configs or {}).items():
        check = TOPIC_CONFIGS.get(key)
        if check is None:
            allowed = ", ".join(sorted(TOPIC_CONFIGS))
            raise InvalidInput(f"{key!r} cannot be set (allowed: {allowed})", field="configs")
        if not check(str(value)):
            raise InvalidInput(f"{value!r} is not a valid {key}", field="configs")
        cleaned[key] = str(value)
    return dict(sorted(cleaned.items()))


def retention_bytes(cluster: Cluster, configs: dict[str, str]) -> dict[str, str]:
    """On a shared Kafka a partition keeps at most the tier's storage shared out over its
    partition limit (``Limits.max_partition_retention_bytes``): ``retention.bytes`` is that when
    unset, and more (or -1, unlimited) is refused. A dedicated cluster's storage is its own."""
    if cluster.cluster_type.kind != Kind.SERVERLESS:
        return configs
    tier = cluster.cluster_type
    ceiling = limits_of(tier, cluster.capacity_units).max_partition_retention_bytes
    value = configs.get("retention.bytes")
    if value is None:
        return dict(sorted({**configs, "retention.bytes": str(ceiling)}.items()))
    if not 1 <= int(value) <= ceiling:
        raise InvalidInput(
            f"retention.bytes is 1 to {ceiling} per partition on {tier.name} clusters "
            f"({tier.max_storage_gb} GB of storage over at most {tier.max_partitions} partitions)",
            field="configs",
        )
    return configs
