"""The simulated data plane (`make run` without Kubernetes): the same rendering as production,
objects kept in the database (Secrets without their values), each turning Ready a set delay
after it was applied. Everything it reports is marked as simulated."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .. import naming
from ..models import SimulatedObject
from ..rendering import render
from ..specs import ClusterSpec, Kind
from .base import Observation, unguarded

SIMULATED_DOMAIN = "simulated.sluice.invalid"
REDACTED = "<not stored>"


def _without_secret_values(manifest: dict) -> dict:
    """The manifest as stored: a Secret's values (credential passwords) never reach the
    database; its keys stay, so the stored object still shows what the Secret holds."""
    if manifest["kind"] != "Secret":
        return manifest
    stored = dict(manifest)
    for part in ("data", "stringData"):
        if part in stored:
            stored[part] = dict.fromkeys(stored[part], REDACTED)
    return stored


class SimulatedDriver:
    def __init__(self, cell) -> None:
        self.cell = cell

    def _delay(self, spec: ClusterSpec) -> timedelta:
        seconds = (
            settings.SLUICE_SIMULATED_DEDICATED_READY_SECONDS
            if spec.kind == Kind.DEDICATED
            else settings.SLUICE_SIMULATED_SERVERLESS_READY_SECONDS
        )
        return timedelta(seconds=seconds)

    @transaction.atomic
    def apply(
        self, spec: ClusterSpec, *, prune: bool = True, guard: Callable[[], None] = unguarded
    ) -> None:
        now = timezone.now()
        kept = []
        for manifest in map(_without_secret_values, render(spec)):
            guard()
            metadata = manifest["metadata"]
            key = {
                "kind": manifest["kind"],
                "namespace": metadata.get("namespace", ""),
                "name": metadata["name"],
            }
            existing = SimulatedObject.objects.filter(**key).first()
            if existing is None or existing.manifest != manifest:
                SimulatedObject.objects.update_or_create(
                    **key,
                    defaults={
                        "cluster_public_id": spec.cluster_id,
                        "manifest": manifest,
                        "applied_generation": spec.generation,
                        "ready_at": now + self._delay(spec),
                    },
                )
            elif existing.applied_generation != spec.generation:
                existing.applied_generation = spec.generation
                existing.save(update_fields=["applied_generation"])
            kept.append(key)
        if not prune:
            return
        stale = SimulatedObject.objects.filter(cluster_public_id=spec.cluster_id)
        for key in kept:
            stale = stale.exclude(**key)
        for pk in stale.values_list("pk", flat=True):
            guard()
            SimulatedObject.objects.filter(pk=pk).delete()

    def observe(self, spec: ClusterSpec) -> Observation:
        objects = list(SimulatedObject.objects.filter(cluster_public_id=spec.cluster_id))
        expected = len(render(spec))
        converged = len(objects) == expected and all(
            o.applied_generation == spec.generation for o in objects
        )
        ready = converged and all(o.ready_at <= timezone.now() for o in objects)
        condition = {
            "type": "Ready",
            "status": "True" if ready else "False",
            "reason": "Simulated" if ready else "SimulatedProvisioning",
            "message": "Simulated data plane: no real Kafka runs for this cluster",
            "object": "simulated",
        }
        return Observation(
            converged=converged,
            ready=ready,
            bootstrap_servers=self._bootstrap(spec) if ready else "",
            conditions=[condition],
        )

    def _bootstrap(self, spec: ClusterSpec) -> str:
        if spec.kind == Kind.SERVERLESS:
            return self.cell.shared_bootstrap or f"{self.cell.slug}.{SIMULATED_DOMAIN}:9092"
        return f"{naming.resource_name(spec.cluster_id)}.{SIMULATED_DOMAIN}:9092"

    def delete(self, spec: ClusterSpec, *, guard: Callable[[], None] = unguarded) -> bool:
        guard()
        SimulatedObject.objects.filter(cluster_public_id=spec.cluster_id).delete()
        return True
