"""The organization's quotas, as the writes that consume them check them: the quota row locked
so that concurrent requests take turns, and the problem a request over a limit answers; and
operators' changes of them, recorded in the organization's audit trail."""

from __future__ import annotations

from django.db import transaction

from foundation.errors import QuotaExceeded
from tenants.audit import Actor, audit_record, snapshot
from tenants.models import Organization
from tenants.scoping import tenant_scope

from ..models import OrganizationQuota

LIMITS = ["max_clusters", "max_partitions", "max_credentials"]


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


@transaction.atomic
def quota_save(*, quota: OrganizationQuota, actor: Actor) -> None:
    """Save an operator's change of an organization's limits (made in the admin) and record it
    in the organization's audit trail, before and after, so its members see who changed what."""
    stored = OrganizationQuota.objects.filter(pk=quota.pk).first() if quota.pk else None
    before = snapshot(stored, LIMITS) if stored is not None else None
    quota.save()
    after = snapshot(quota, LIMITS)
    if before == after:
        return
    with tenant_scope(quota.organization):
        audit_record(
            organization=quota.organization,
            actor=actor,
            action="quota.changed",
            target=quota,
            before=before,
            after=after,
        )


@transaction.atomic
def quota_reset(*, quota: OrganizationQuota, actor: Actor) -> None:
    """Remove an organization's override: the defaults apply again (audited)."""
    before = snapshot(quota, LIMITS)
    organization = quota.organization
    quota.delete()
    with tenant_scope(organization):
        audit_record(
            organization=organization,
            actor=actor,
            action="quota.reset",
            target=organization,
            before=before,
            after=snapshot(OrganizationQuota(), LIMITS),
        )
