"""Reads of the clusters app."""

from django.db.models import F, QuerySet
from django.utils import timezone

from tenants.models import Organization

from .models import Cell, Cluster, Credential, Operation, Tier, TierPrice, Topic


def clusters(*, organization: Organization) -> QuerySet[Cluster]:
    """The organization's live clusters (not deleted), with their tier and cell."""
    return Cluster.objects.filter(
        organization=organization, deleted_at__isnull=True
    ).select_related("tier", "cell")


def live_cluster(*, organization: Organization, public_id: str) -> Cluster | None:
    return clusters(organization=organization).filter(public_id=public_id).first()


def deleted_cluster(*, organization: Organization, public_id: str) -> Cluster | None:
    return Cluster.objects.filter(
        organization=organization, public_id=public_id, deleted_at__isnull=False
    ).first()


def live_topics(*, cluster: Cluster) -> QuerySet[Topic]:
    return (
        Topic.objects.filter(cluster=cluster, deleted_at__isnull=True)
        .select_related("cluster__tier")
        .order_by("name")
    )


def live_credentials(*, cluster: Cluster) -> QuerySet[Credential]:
    return (
        Credential.objects.filter(cluster=cluster, deleted_at__isnull=True)
        .select_related("cluster__tier")
        .order_by("-created_at", "-id")
    )


# What a cluster's representation (API list and get) reads: pages of clusters load no more.
CLUSTER_SUMMARY_COLUMNS = (
    "public_id",
    "organization_id",
    "name",
    "capacity_units",
    "kafka_version",
    "state",
    "generation",
    "observed_generation",
    "bootstrap_servers",
    "bootstrap_tls",
    "conditions",
    "failure_reason",
    "failure_message",
    "throttled_since",
    "throttle_reason",
    "created_at",
    "updated_at",
)


def cluster_summaries(queryset: QuerySet[Cluster]) -> QuerySet[Cluster]:
    """``queryset`` narrowed to the columns of a cluster's representation, with its tier and
    region joined in as values (``Cluster.kind``, ``.tier_slug``, ``.region``) rather than as
    instances: three model instances a row were most of a page's cost. For reading only (a
    deferred field would cost a query per row)."""
    return queryset.only(*CLUSTER_SUMMARY_COLUMNS).annotate(
        kind=F("tier__kind"), tier_slug=F("tier__slug"), region=F("cell__region")
    )


def operations(*, organization: Organization) -> QuerySet[Operation]:
    return Operation.objects.filter(organization=organization).select_related("cluster")


def current_prices(*, at=None) -> dict[int, list[TierPrice]]:
    """Each tier's price per dimension in force at ``at`` (now by default)."""
    at = at or timezone.now()
    in_force: dict[tuple[int, str], TierPrice] = {}
    for price in TierPrice.objects.filter(effective_from__lte=at).order_by("effective_from"):
        in_force[(price.tier_id, price.dimension)] = price
    by_tier: dict[int, list[TierPrice]] = {}
    for (tier_id, _), price in sorted(in_force.items()):
        by_tier.setdefault(tier_id, []).append(price)
    return by_tier


def catalog() -> list[Tier]:
    prices = current_prices()
    tiers = list(Tier.objects.filter(offered=True))
    for tier in tiers:
        tier.current_prices = prices.get(tier.pk, [])
    return tiers


def regions() -> list[str]:
    return sorted(set(Cell.objects.filter(accepting=True).values_list("region", flat=True)))
