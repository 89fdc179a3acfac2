"""Throttling: which of an organization's clusters are slowed to the throttle floors, set as a
whole by the app that decides it (billing's spend caps). Each cluster that changes gets a new
generation through the lifecycle, so the reconciler renders its principals' quotas at the
floors, or back at their own, and records it ``throttled`` or ``ready``."""

from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction

from tenants.audit import Actor
from tenants.models import Organization

from .. import lifecycle
from ..models import Cluster, ClusterState
from ..specs import Kind

SPEND_CONTROL = Actor(system="spend-control")


def throttleable(cluster: Cluster) -> bool:
    """Only a cluster on a shared Kafka is slowed down: a dedicated cluster's cost is its
    capacity, which a lower rate does not change."""
    return cluster.tier.kind != Kind.DEDICATED


@transaction.atomic
def clusters_throttle_set(
    *, organization: Organization, throttled: Mapping[int, str], actor: Actor = SPEND_CONTROL
) -> tuple[int, int]:
    """Throttle exactly the organization's clusters in ``throttled`` (cluster primary key to the
    reason shown) that can be, and lift the throttle of every other; returns how many were
    throttled and how many lifted by this call. Deleting clusters are left as they are."""
    clusters = (
        Cluster.objects.select_for_update()
        .select_related("tier")
        .filter(organization=organization, deleted_at__isnull=True)
        .exclude(state=ClusterState.DELETING)
        .order_by("pk")
    )
    slowed = lifted = 0
    for cluster in clusters:
        reason = throttled.get(cluster.pk)
        if reason is not None and throttleable(cluster):
            slowed += lifecycle.request_throttle(cluster, reason=reason, actor=actor) is not None
        elif cluster.throttled_since is not None:
            lifted += lifecycle.request_unthrottle(cluster, actor=actor) is not None
    return slowed, lifted
