"""What tenants may set on their topics, and the checks names and values must pass."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from foundation.api.validation import INT32_RANGE, INT64_RANGE, decimal_integer
from foundation.errors import InvalidInput

from .models import CleanupPolicy, Cluster
from .specs import Kind
from .tiers import limits_of

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


# The OpenAPI description of a Kafka integer: the decimal digits decimal_integer reads (its
# bounds are stated in words, in the rule's ``expects``).
_DECIMAL = {"pattern": r"^-?[0-9]{1,19}$"}


@dataclass(frozen=True)
class ConfigRule:
    """What one topic config accepts, the canonical text kept for it, and its JSON schema."""

    expects: str
    canonical: Callable[[str], str | None]
    schema: dict


def _one_of(*choices: str) -> ConfigRule:
    return ConfigRule(
        f"one of {', '.join(choices)}",
        lambda v: v if v in choices else None,
        {"enum": list(choices)},
    )


def _integer(
    java_type: str, minimum: int, maximum: int | None = None, *, or_: int | None = None
) -> ConfigRule:
    """A Kafka ``int`` or ``long`` config: ASCII decimal digits, within the Java type (Kafka
    could not read the value otherwise) and Sluice's bounds; kept without leading zeros."""
    low, high = INT32_RANGE if java_type == "int" else INT64_RANGE
    maximum = high if maximum is None else maximum

    def canonical(text: str) -> str | None:
        value = decimal_integer(text, minimum=low, maximum=high)
        if value is None or not (value == or_ or minimum <= value <= maximum):
            return None
        return str(value)

    either = f"{or_} or " if or_ is not None else ""
    return ConfigRule(f"{either}an integer from {minimum} to {maximum}", canonical, _DECIMAL)


# Topic configs a tenant may set beyond retention and cleanup policy, with Kafka's type for each.
TOPIC_CONFIGS: dict[str, ConfigRule] = {
    "compression.type": _one_of("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
    "max.message.bytes": _integer("int", 1, 8_388_608),
    "message.timestamp.type": _one_of("CreateTime", "LogAppendTime"),
    "retention.bytes": _integer("long", 1, or_=-1),
    "delete.retention.ms": _integer("long", 0, 7 * 24 * 3_600_000),
    "min.compaction.lag.ms": _integer("long", 0),
    "max.compaction.lag.ms": _integer("long", 1),
    "segment.ms": _integer("long", 600_000),
}
TOPIC_CONFIG_SCHEMAS = {key: rule.schema for key, rule in TOPIC_CONFIGS.items()}


def topic_name(cluster: Cluster, name: str) -> str:
    name = (name or "").strip()
    room = KAFKA_TOPIC_NAME_MAX
    if cluster.tier.kind == Kind.SERVERLESS:
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
    maximum = cluster.tier.max_retention_hours * 3_600_000
    if value is None:
        return min(DEFAULT_RETENTION_MS, maximum)
    if value < MIN_RETENTION_MS or value > maximum:
        raise InvalidInput(
            f"retention_ms is {MIN_RETENTION_MS} to {maximum} on {cluster.tier.name} clusters",
            field="retention_ms",
        )
    return value


def cleanup_policy(value: str) -> str:
    if value not in CleanupPolicy.values:
        raise InvalidInput(
            f"cleanup_policy is one of {CleanupPolicy.values}", field="cleanup_policy"
        )
    return value


def topic_configs(configs: dict | None) -> dict[str, str]:
    cleaned = {}
    for key, value in (configs or {}).items():
        rule = TOPIC_CONFIGS.get(key)
        if rule is None:
            allowed = ", ".join(sorted(TOPIC_CONFIGS))
            raise InvalidInput(f"{key[:64]!r} cannot be set (allowed: {allowed})", field="configs")
        canonical = rule.canonical(str(value))
        if canonical is None:
            raise InvalidInput(f"{key} is {rule.expects}", field="configs")
        cleaned[key] = canonical
    return dict(sorted(cleaned.items()))


def retention_bytes(cluster: Cluster, configs: dict[str, str]) -> dict[str, str]:
    """On a shared Kafka a partition keeps at most the tier's storage shared out over its
    partition limit (``Limits.max_partition_retention_bytes``): ``retention.bytes`` is that when
    unset, and more (or -1, unlimited) is refused. A dedicated cluster's storage is its own."""
    if cluster.tier.kind != Kind.SERVERLESS:
        return configs
    tier = cluster.tier
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
