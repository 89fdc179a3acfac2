"""What a tier allows one cluster: its effective limits, which the reconciler renders into the
data plane, the API checks requests against, and usage charts draw."""

from __future__ import annotations

from .models import GB, MB, Tier
from .specs import Kind, Limits


def limits_of(tier: Tier, units: int) -> Limits:
    return Limits(
        ingress_bytes_per_second=tier.ingress_mbps * MB * units,
        egress_bytes_per_second=tier.egress_mbps * MB * units,
        max_partitions=tier.max_partitions * units,
        max_storage_bytes=tier.max_storage_gb * GB * units,
        max_retention_ms=tier.max_retention_hours * 3_600_000,
        max_connections=tier.max_connections * units,
        # On a shared Kafka the cluster may use a bounded share of the brokers' threads, which
        # its principals divide among themselves; a dedicated cluster's principals share their
        # own brokers.
        request_percentage=100 if tier.kind == Kind.DEDICATED else 25,
        controller_mutation_rate=float(10 * units),
    )
