"""The initial catalog of tiers and their prices, grounded on the peers' published
offerings (see README). Operators edit both in the admin; a price change is a new TierPrice with a
later effective date, never an edit."""

from datetime import UTC, datetime

EFFECTIVE = datetime(2026, 1, 1, tzinfo=UTC)
GB = 10**9

CATALOG = [
    {
        "slug": "serverless",
        "name": "Serverless",
        "description": "Pay only for what you use, with no hourly floor. A logical cluster on a "
        "shared, multi-tenant Kafka; usable in under a second. For development and spiky "
        "workloads.",
        "kind": "serverless",
        "position": 1,
        "sla_percent": "99.500",
        "ingress_mbps": 100,
        "egress_mbps": 300,
        "max_partitions": 2048,
        "max_storage_gb": 5000,
        "max_retention_hours": 24 * 30,
        "max_connections": 1000,
        "max_requests_per_second": 1500,
        "max_credentials": 50,
        "prices": {
            "ingress_bytes": (80_000, GB),  # $0.08 per GB written
            "egress_bytes": (50_000, GB),  # $0.05 per GB read
            "storage_byte_hours": (137, GB),  # $0.10 per GB-month (730 h)
            "partition_hours": (1_500, 1),  # $0.0015 per partition-hour
        },
    },
    {
        "slug": "standard",
        "name": "Standard",
        "description": "Production on shared infrastructure: higher limits, a 99.95% SLA, "
        "retention up to a year, a flat hourly price plus usage.",
        "kind": "serverless",
        "position": 2,
        "sla_percent": "99.950",
        "ingress_mbps": 250,
        "egress_mbps": 750,
        "max_partitions": 4096,
        "max_storage_gb": 100_000,
        "max_retention_hours": 24 * 365,
        "max_connections": 4000,
        "max_requests_per_second": 15000,
        "max_credentials": 200,
        "prices": {
            "cluster_hours": (750_000, 1),  # $0.75 per cluster-hour
            "ingress_bytes": (50_000, GB),
            "egress_bytes": (50_000, GB),
            "storage_byte_hours": (110, GB),  # $0.08 per GB-month
            "partition_hours": (1_000, 1),
        },
    },
    {
        "slug": "dedicated",
        "name": "Dedicated",
        "description": "Brokers of your own, in a namespace of your own, sized in capacity "
        "units. Predictable performance and a 99.99% SLA.",
        "kind": "dedicated",
        "position": 3,
        "sla_percent": "99.990",
        # Per capacity unit:
        "ingress_mbps": 60,
        "egress_mbps": 180,
        "max_partitions": 4500,
        "max_storage_gb": 10_000,
        "max_retention_hours": 24 * 365 * 10,
        "max_connections": 18000,
        "max_requests_per_second": 30000,
        "max_credentials": 500,
        "min_capacity_units": 1,
        "max_capacity_units": 24,
        "brokers_per_unit": 1,
        "broker_cpu_millicores": 2000,
        "broker_memory_gb": 8,
        "prices": {
            "capacity_unit_hours": (1_500_000, 1),  # $1.50 per capacity-unit hour
            "egress_bytes": (20_000, GB),
            "storage_byte_hours": (137, GB),
        },
    },
]


# A tier's identity is the catalog's: the API and the OpenAPI description name these slugs, and
# operators edit a tier's limits, prices and whether it is offered, not which tiers exist.
TIER_SLUGS = tuple(entry["slug"] for entry in CATALOG)

# The cloud regions a cell may be placed in, and so the regions a cluster may ask for. Whether a
# region has a cell accepting clusters is the fleet's state (GET /api/v1/catalog/ lists those);
# a new region is added here, then given a cell.
REGIONS = (
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "ca-central-1",
    "sa-east-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
)


def seed_catalog(tier_model, tier_price_model) -> None:
    """Create or refresh the catalog (idempotent) in these models: the migration's historical
    ones, or clusters.models.Tier and TierPrice. This module names no model: the models
    take their choices from it. The prices (rows of tier_price_model) are made through the
    tier's ``prices`` relation: its name is the same in every version of the models, the name
    of the price's key to its tier is not."""
    for entry in CATALOG:
        fields = {k: v for k, v in entry.items() if k not in ("slug", "prices")}
        tier, _ = tier_model.objects.get_or_create(slug=entry["slug"], defaults=fields)
        for dimension, (micros, per_units) in entry["prices"].items():
            tier.prices.get_or_create(
                dimension=dimension,
                effective_from=EFFECTIVE,
                defaults={"micros": micros, "per_units": per_units},
            )
