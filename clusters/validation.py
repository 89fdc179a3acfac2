"""What tenants may set on their topics, and the checks names and values must pass."""

from __future__ import annotations

import re

from controlplane.errors import InvalidInput

from .models import Cluster
from .specs import Kind

TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")
# The same rule, with '.', '..' and names starting with '__' left out, as one pattern without
# look-arounds (the OpenAPI description states it, and generated clients check it).
TOPIC_NAME_PATTERN = (
    r"^([a-zA-Z0-9-][a-zA-Z0-9._-]*|_([a-zA-Z0-9.-][a-zA-Z0-9._-]*)?"
    r"|\.([a-zA-Z0-9_-][a-zA-Z0-9._-]*|\.[a-zA-Z0-9._-]+))$"
)
KAFKA_TOPIC_NAME_MAX = 249
DEFAULT_RETENTION_MS = 7 * 24 * 3_600_000
MIN_RETENTION_MS = 60_000

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
# What the OpenAPI description says of each: the enumerations exactly, the numbers' digits
# (their bounds are in TOPIC_CONFIGS and the tier).
_DIGITS = r"^[0-9]+$"
_POSITIVE = r"^0*[1-9][0-9]*$"
TOPIC_CONFIG_SCHEMAS = {
    "compression.type": {"enum": sorted(_COMPRESSION)},
    "max.message.bytes": {"pattern": _POSITIVE},
    "message.timestamp.type": {"enum": ["CreateTime", "LogAppendTime"]},
    "retention.bytes": {"pattern": r"^(-1|0*[1-9][0-9]*)$"},
    "delete.retention.ms": {"pattern": _DIGITS},
    "min.compaction.lag.ms": {"pattern": _DIGITS},
    "max.compaction.lag.ms": {"pattern": _POSITIVE},
    "segment.ms": {"pattern": _DIGITS},
}


def topic_name(cluster: Cluster, name: str) -> str:
    name = (name or "").strip()
    room = KAFKA_TOPIC_NAME_MAX
    if cluster.cluster_type.kind == Kind.SERVERLESS:
        room -= len(cluster.public_id) + 1  # the "<cluster id>." prefix on the shared Kafka
    if not name or name in {".", ".."} or not TOPIC_NAME.fullmatch(name) or len(name) > room:
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
    if value < MIN_RETENTION_MS or value > maximum:
        raise InvalidInput(
            f"retention_ms is {MIN_RETENTION_MS} to {maximum} on "
            f"{cluster.cluster_type.name} clusters",
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
