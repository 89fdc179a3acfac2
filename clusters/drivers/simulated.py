"""The simulated data plane (`make run` without Kubernetes): the same rendering as production,
objects kept in the database (Secrets without their values), each turning Ready a set delay
after it was applied. Everything it reports is marked as simulated."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .. import naming
from ..models import SimulatedObject
from ..rendering import render
from ..specs import ClusterSpec, Kind
from .base import Inventory, Observation, key_of, unguarded

SIMULATED_DOMAIN = "simulated.sluice.invalid"
REDACTED = "<not stored>"
# Where a listed object carries its simulated state: [applied generation, when Ready].
SIMULATED_STATE = "simulated"


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
        kept = [self._apply_one(spec, manifest, guard) for manifest in render(spec)]
        if not prune:
            return
        stale = SimulatedObject.objects.filter(cluster_public_id=spec.cluster_id)
        for key in kept:
            stale = stale.exclude(**key)
        for pk in stale.values_list("pk", flat=True):
            guard()
            SimulatedObject.objects.filter(pk=pk).delete()

    def _apply_one(self, spec: ClusterSpec, manifest: dict, guard: Callable[[], None]) -> dict:
        guard()
        manifest = _without_secret_values(manifest)
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
                    "ready_at": timezone.now() + self._delay(spec),
                },
            )
        elif existing.applied_generation != spec.generation:
            existing.applied_generation = spec.generation
            existing.save(update_fields=["applied_generation"])
        return key

    def observe(self, spec: ClusterSpec) -> Observation:
        objects = SimulatedObject.objects.filter(cluster_public_id=spec.cluster_id)
        return self._observation(spec, [(o.applied_generation, o.ready_at) for o in objects])

    def _observation(self, spec: ClusterSpec, objects: list[tuple[int, datetime]]) -> Observation:
        """From each object's (applied generation, when it turns Ready)."""
        expected = len(render(spec))
        converged = len(objects) == expected and all(
            generation == spec.generation for generation, _ in objects
        )
        now = timezone.now()
        ready = converged and all(ready_at <= now for _, ready_at in objects)
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

    # the cell's resync (clusters.resync): its objects are rows, listed by namespace -----------

    def inventory(self, dedicated: dict[str, str]) -> Inventory:
        inventory = Inventory(requests=1)
        places = {self.cell.shared_kafka_namespace, *dedicated}
        rows = SimulatedObject.objects.filter(
            namespace__in=places
        ) | SimulatedObject.objects.filter(kind="Namespace", name__in=list(dedicated))
        for row in rows:
            listed = {**row.manifest, SIMULATED_STATE: [row.applied_generation, row.ready_at]}
            inventory.objects[key_of(listed)] = listed
        inventory.absent = {
            namespace
            for namespace in dedicated
            if ("Namespace", "", namespace) not in inventory.objects
        }
        return inventory

    def comparable(self, manifest: dict) -> dict:
        return _without_secret_values(manifest)

    def observe_listed(self, spec: ClusterSpec, inventory: Inventory) -> Observation:
        states = [
            inventory.objects[key_of(m)][SIMULATED_STATE]
            for m in render(spec)
            if key_of(m) in inventory.objects
        ]
        return self._observation(spec, states)

    @transaction.atomic
    def apply_objects(
        self, spec: ClusterSpec, manifests: list[dict], *, guard: Callable[[], None]
    ) -> None:
        for manifest in manifests:
            self._apply_one(spec, manifest, guard)

    def delete_object(self, listed: dict, *, guard: Callable[[], None]) -> None:
        guard()
        kind, namespace, name = key_of(listed)
        SimulatedObject.objects.filter(kind=kind, namespace=namespace, name=name).delete()
