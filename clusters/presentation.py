"""How the clusters pages show prices, limits, durations and quotas: money in dollars from
micro-dollars, a tier's card (limits and prices in the order of the dimensions), retention in
hours, days or years (``foundation.text``, re-exported for the pages), client quotas in MB/s."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from foundation.text import duration_label as duration_label  # the pages' name for it
from foundation.text import hours_label, plain, rate_label

from .models import GB, Credential, Dimension, Tier, TierPrice

HOURLY_DIMENSIONS = {"cluster_hours", "capacity_unit_hours"}
HOURS_PER_MONTH = 730
DIMENSION_ORDER = {dimension: index for index, dimension in enumerate(Dimension.values)}
# Dimensions priced by bytes, and the word a price of each ends with.
BYTE_DIMENSIONS = {
    "ingress_bytes": " written",
    "egress_bytes": " read",
    "storage_byte_hours": " stored",
}
# Dimensions priced by a count of hours, and one of them in words.
HOUR_UNITS = {
    "cluster_hours": "cluster-hour",
    "capacity_unit_hours": "capacity-unit-hour",
    "partition_hours": "partition-hour",
}


def usd(micros: int) -> str:
    """Micro-dollars as dollars, with cents always and more digits only when they matter."""
    whole, _, fraction = f"{Decimal(micros) / 1_000_000:f}".partition(".")
    return f"${whole}.{fraction.rstrip('0').ljust(2, '0')}"


def _quantity(per_units: int, single: str, plural: str) -> str:
    return single if per_units == 1 else f"{per_units:,} {plural}"


def price_unit(dimension: str, per_units: int) -> str:
    """What one price is for: "GB", "GB-hour", "partition-hour", "1,000 partition-hours"."""
    if dimension in BYTE_DIMENSIONS:
        if per_units % GB == 0:
            amount = "GB" if per_units == GB else f"{per_units // GB:,} GB"
        else:
            amount = f"{per_units:,} bytes"
        return f"{amount}-hour" if dimension == "storage_byte_hours" else amount
    if dimension in HOUR_UNITS:
        single = HOUR_UNITS[dimension]
        return _quantity(per_units, single, f"{single}s")
    return Dimension(dimension).label


def price_label(price: TierPrice) -> str:
    """e.g. "$0.08 / GB written", "$1.50 / capacity-unit-hour"."""
    unit = price_unit(price.dimension, price.per_units)
    label = f"{usd(price.micros)} / {unit}{BYTE_DIMENSIONS.get(price.dimension, '')}"
    if price.dimension == "storage_byte_hours" and price.per_units == GB:
        monthly = (Decimal(price.micros * HOURS_PER_MONTH) / 1_000_000).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        )
        label += f" (≈ ${monthly} / GB-month)"
    return label


def _limits(tier: Tier) -> list[str]:
    return [
        f"{tier.ingress_mbps:,} MB/s in · {tier.egress_mbps:,} MB/s out",
        f"{tier.max_partitions:,} partitions",
        f"{tier.max_storage_gb:,} GB storage",
        f"{hours_label(tier.max_retention_hours)} retention",
        f"{tier.max_connections:,} connections",
        f"{tier.max_credentials:,} credentials",
    ]


def tier_card(tier: Tier) -> dict:
    # In the order of the dimensions: hourly prices first, then traffic, storage, partitions.
    prices = sorted(
        getattr(tier, "current_prices", []),
        key=lambda price: DIMENSION_ORDER.get(price.dimension, len(DIMENSION_ORDER)),
    )
    return {
        "tier": tier,
        "sla": plain(tier.sla_percent),
        "limits": _limits(tier),
        "limits_per": "per capacity unit" if tier.is_dedicated else "per cluster",
        "prices": [price_label(price) for price in prices],
        "hourly": any(price.dimension in HOURLY_DIMENSIONS for price in prices),
    }


def credential_quotas(credential: Credential) -> list[str]:
    quotas = []
    if credential.producer_byte_rate is not None:
        quotas.append(f"produce ≤ {rate_label(credential.producer_byte_rate)}")
    if credential.consumer_byte_rate is not None:
        quotas.append(f"consume ≤ {rate_label(credential.consumer_byte_rate)}")
    if credential.request_percentage is not None:
        quotas.append(f"requests ≤ {credential.request_percentage}%")
    return quotas
