"""What a tier allows one cluster: its effective limits, which the reconciler renders into the
data plane, the API checks requests against, and usage charts draw; and the sizes it comes in."""

from __future__ import annotations

from django.conf import settings

from foundation.errors import InvalidInput

from .models import GB, MB, Tier
from .specs import Kind, Limits, ThrottleFloors


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


def throttle_floors() -> ThrottleFloors:
    """The rates a throttled cluster's principals get (settings ``SLUICE_THROTTLE_*``)."""
    return ThrottleFloors(
        producer_bytes_per_second=settings.SLUICE_THROTTLE_PRODUCER_BYTES_PER_SECOND,
        consumer_bytes_per_second=settings.SLUICE_THROTTLE_CONSUMER_BYTES_PER_SECOND,
        controller_mutation_rate=settings.SLUICE_THROTTLE_CONTROLLER_MUTATIONS_PER_SECOND,
    )


def capacity_units_for(tier: Tier, capacity_units: int | None) -> int:
    """The capacity units a cluster of ``tier`` asked for ``capacity_units`` has: a dedicated
    tier's minimum when not given, within its range; 1 for the other tiers, which are not sized
    in units (asking for more is refused)."""
    if tier.kind != Kind.DEDICATED:
        if capacity_units not in (None, 1):
            raise InvalidInput(
                f"{tier.name} clusters are not sized in capacity units", field="capacity_units"
            )
        return 1
    units = capacity_units or tier.min_capacity_units
    if not tier.min_capacity_units <= units <= tier.max_capacity_units:
        raise InvalidInput(
            f"{tier.name} clusters have {tier.min_capacity_units} to "
            f"{tier.max_capacity_units} capacity units",
            field="capacity_units",
        )
    return units
