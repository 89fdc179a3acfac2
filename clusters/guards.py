"""Creation guards: checks that apps above this layer add to the creation and reshaping of
what a tenant runs, so the cluster services ask them without naming them (billing's payment
policy is one, registered from its ``AppConfig.ready``).

The cluster, topic and credential services call ``check_creation`` before a cluster is
created, reshaped (a new tier or size), a topic created or given more partitions, or a
credential created, inside their transaction: a guard that refuses
raises a ``foundation.errors.DomainError``, which rolls the change back and reaches the caller
as a problem (API) or a form error (web UI). A guard only says yes or no; it changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tenants.models import Organization

from .models import Cluster, Tier

CLUSTER_CREATE = "cluster.create"
CLUSTER_RESHAPE = "cluster.reshape"
TOPIC_CREATE = "topic.create"
PARTITIONS_ADD = "topic.partitions_add"
CREDENTIAL_CREATE = "credential.create"


@dataclass(frozen=True)
class Creation:
    """What is about to be made: ``action`` (one of the constants above) in
    ``organization``, on ``tier`` with ``capacity_units`` (a reshape's new ones; the cluster's
    for a topic), ``cluster`` being the one reshaped, as it still is, or given a topic (None
    for a new cluster)."""

    organization: Organization
    action: str
    tier: Tier
    capacity_units: int = 1
    cluster: Cluster | None = None

    @classmethod
    def within(cls, cluster: Cluster, action: str) -> Creation:
        """Something made inside ``cluster`` (a topic, partitions, a credential)."""
        return cls(
            organization=cluster.organization,
            action=action,
            tier=cluster.tier,
            capacity_units=cluster.capacity_units,
            cluster=cluster,
        )


CreationGuard = Callable[[Creation], None]

_guards: list[CreationGuard] = []


def register_creation_guard(guard: CreationGuard) -> CreationGuard:
    """Add ``guard`` (once: registering it again changes nothing); returns it, so it serves as
    a decorator."""
    if guard not in _guards:
        _guards.append(guard)
    return guard


def unregister_creation_guard(guard: CreationGuard) -> None:
    if guard in _guards:
        _guards.remove(guard)


def check_creation(creation: Creation) -> None:
    """Ask every guard, in the order they were registered; the first refusal raises."""
    for guard in list(_guards):
        guard(creation)
