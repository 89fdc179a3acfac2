"""The first steps of a new organization, shown on its clusters page until all are done: create
a cluster, a topic, a credential, then connect a client. Each ticks off from what exists; the
last from traffic seen, which the layer that meters it says (``register_traffic_check``, from
billing's ``AppConfig.ready``; without one, a credential on a ready cluster counts)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.urls import reverse

from tenants.models import Organization

from .models import Cluster, ClusterState, Credential, Topic

TrafficCheck = Callable[[Organization], bool]
_traffic_checks: list[TrafficCheck] = []


def register_traffic_check(check: TrafficCheck) -> None:
    """Add a check saying whether any client of the organization has produced or consumed."""
    if check not in _traffic_checks:
        _traffic_checks.append(check)


@dataclass(frozen=True)
class Step:
    label: str
    done: bool
    url: str  # where it is done; empty when there is nowhere to go yet


def first_steps(*, organization: Organization) -> list[Step] | None:
    """The steps, or None once all are done (the panel is then not shown)."""
    live = {"organization": organization, "deleted_at__isnull": True}
    cluster = Cluster.objects.filter(**live).order_by("created_at", "id").first()
    has_topic = Topic.objects.filter(**live).exists()
    has_credential = Credential.objects.filter(**live).exists()
    if _traffic_checks:
        connected = any(check(organization) for check in _traffic_checks)
    else:
        connected = (
            has_credential
            and Cluster.objects.filter(
                **live, state=ClusterState.READY, credentials__deleted_at__isnull=True
            ).exists()
        )
    if cluster is not None and has_topic and has_credential and connected:
        return None
    org = organization.public_id
    page = reverse("clusters:detail", args=[org, cluster.public_id]) if cluster else ""
    return [
        Step(
            "Create a cluster",
            cluster is not None,
            reverse("clusters:list", args=[org]) + "#create",
        ),
        Step("Create a topic", has_topic, f"{page}#topic" if page else ""),
        Step("Create a credential", has_credential, f"{page}#credential" if page else ""),
        Step("Connect a client", connected, f"{page}#connect" if page else ""),
    ]
