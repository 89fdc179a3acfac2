"""The organization's quotas, as the writes that consume them check them: the quota row locked
so that concurrent requests take turns, and the problem a request over a limit answers."""

from __future__ import annotations

from foundation.errors import QuotaExceeded
from tenants.models import Organization

from ..models import OrganizationQuota


def locked_quota(organization: Organization) -> OrganizationQuota:
    """The organization's quota row, locked until the transaction ends: concurrent requests of
    one organization that consume quota take turns, so together they cannot exceed it."""
    locked = OrganizationQuota.objects.select_for_update()
    quota = locked.filter(organization=organization).first()
    if quota is None:  # the organization's first use of a quota: the defaults
        OrganizationQuota.objects.get_or_create(organization=organization)
        quota = locked.get(organization=organization)
    return quota


def exceeded(*, limit: str, maximum: int, current: int, requested: int) -> QuotaExceeded:
    excess = current + requested - maximum
    return QuotaExceeded(
        f"This would make {current + requested} {limit.replace('_', ' ')}, "
        f"{excess} over the limit of {maximum}",
        limit=limit,
        maximum=maximum,
        current=current,
        requested=requested,
        excess=excess,
    )
