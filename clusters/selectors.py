"""Reads of the clusters app."""

from django.db.models import QuerySet
from django.utils import timezone

from tenants.models import Organization

from .models import Cell, Cluster, ClusterType, Operation, TierPrice


def clusters(*, organization: Organization) -> QuerySet[Cluster]:
    return Cluster.objects.filter(
        organization=organization, deleted_at__isnull=True
    ).select_related("cluster_type", "cell")


def operations(*, organization: Organization) -> QuerySet[Operation]:
    return Operation.objects.filter(organization=organization).select_related("cluster")


def current_prices(*, at=None) -> dict[int, list[TierPrice]]:
    """Each tier's price per dimension in force at ``at`` (now by default)."""
    at = at or timezone.now()
    in_force: dict[tuple[int, str], TierPrice] = {}
    for price in TierPrice.objects.filter(effective_from__lte=at).order_by("effective_from"):
        in_force[(price.cluster_type_id, price.dimension)] = price
    by_tier: dict[int, list[TierPrice]] = {}
    for (tier_id, _), price in sorted(in_force.items()):
        by_tier.setdefault(tier_id, []).append(price)
    return by_tier


def catalog() -> list[ClusterType]:
    prices = current_prices()
    tiers = list(ClusterType.objects.filter(offered=True))
    for tier in tiers:
        tier.current_prices = prices.get(tier.pk, [])
    return tiers


def regions() -> list[str]:
    return sorted(set(Cell.objects.filter(accepting=True).values_list("region", flat=True)))
