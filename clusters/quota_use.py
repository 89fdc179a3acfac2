"""How much of its quotas an organization uses (clusters, partitions, credentials against its
limits, counted as the services count them when they check), shown before a limit is hit: on
the clusters page and in the organization's settings."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Sum

from tenants.models import Organization

from .models import (
    Cluster,
    Credential,
    OrganizationQuota,
    Topic,
    default_max_clusters,
    default_max_credentials,
    default_max_partitions,
)

# From this share of a limit on, the use is shown as near it.
NEAR_PERCENT = 80


@dataclass(frozen=True)
class QuotaUse:
    label: str
    used: int
    limit: int

    @property
    def percent(self) -> int:
        """The share used, in whole percent, at most 100 (for the bar)."""
        return min(100, self.used * 100 // self.limit) if self.limit else 100

    @property
    def near_from(self) -> int:
        """The use from which it is near the limit."""
        return self.limit * NEAR_PERCENT // 100

    @property
    def level(self) -> str:
        """``full`` (nothing more fits), ``near`` or ``ok``."""
        if self.used >= self.limit:
            return "full"
        return "near" if self.percent >= NEAR_PERCENT else "ok"


def quota_use(*, organization: Organization) -> list[QuotaUse]:
    quota = OrganizationQuota.objects.filter(organization=organization).first()
    if quota is None:  # none written yet: the defaults the services would write
        quota = OrganizationQuota(
            max_clusters=default_max_clusters(),
            max_partitions=default_max_partitions(),
            max_credentials=default_max_credentials(),
        )
    live = {"organization": organization, "deleted_at__isnull": True}
    partitions = Topic.objects.filter(**live).aggregate(n=Sum("partitions"))["n"] or 0
    return [
        QuotaUse("Clusters", Cluster.objects.filter(**live).count(), quota.max_clusters),
        QuotaUse("Partitions", partitions, quota.max_partitions),
        QuotaUse("Credentials", Credential.objects.filter(**live).count(), quota.max_credentials),
    ]


def quota_panel(organization: Organization) -> dict:
    """The settings page's panel of the quota use."""
    return {"quota_use": quota_use(organization=organization)}
