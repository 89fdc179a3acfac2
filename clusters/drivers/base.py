from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ..specs import ClusterSpec


@dataclass(frozen=True)
class Observation:
    """What the data plane reports for one cluster at one moment."""

    # Every object of the current rendering exists and reports the generation it was given.
    converged: bool
    ready: bool
    bootstrap_servers: str = ""
    # Whether that listener speaks TLS (clients use SASL_SSL, else SASL_PLAINTEXT).
    bootstrap_tls: bool = True
    # Normalised conditions: [{"type", "status", "reason", "message", "object"}].
    conditions: list[dict] = field(default_factory=list)
    # The data plane said it cannot do it (Ready=False with a reason), not merely "not yet".
    failed: bool = False
    reason: str = ""
    message: str = ""


def unguarded() -> None:
    """The guard of a caller that holds no lease (tests, one-off tools)."""


class Driver(Protocol):
    # ``guard`` is called before every write to the data plane: it raises when the run has
    # lost the cluster's lease, so a stale run never overwrites or prunes a newer run's work.

    def apply(
        self, spec: ClusterSpec, *, prune: bool = True, guard: Callable[[], None] = unguarded
    ) -> None:
        """Make the data plane hold what ``render(spec)`` says (idempotent); with ``prune``,
        also delete what an earlier spec rendered and this one does not, so that it holds
        exactly that."""

    def observe(self, spec: ClusterSpec) -> Observation:
        """Read back what the data plane reports; never assume success not observed."""

    def delete(self, spec: ClusterSpec, *, guard: Callable[[], None] = unguarded) -> bool:
        """Remove everything of the cluster; True once nothing of it is left."""


# (kind, namespace, name): how a listed object is known ("" for a cluster-wide one's namespace).
ObjectKey = tuple[str, str, str]


def key_of(manifest: dict) -> ObjectKey:
    metadata = manifest["metadata"]
    return (manifest["kind"], metadata.get("namespace") or "", metadata["name"])


@dataclass
class Inventory:
    """What Sluice manages in a cell at one moment, as listed: every object labelled
    managed-by=sluice in the namespaces looked at, each with its apiVersion and kind."""

    objects: dict[ObjectKey, dict] = field(default_factory=dict)
    # The cell's shared Kafka (not Sluice's: read for its serverless clusters' readiness).
    shared_kafka: dict | None = None
    # Dedicated namespaces that do not exist: everything of their cluster is missing.
    absent: set[str] = field(default_factory=set)
    # Dedicated namespaces not listed: terminating, not Sluice's, or Sluice's binding there is
    # gone (its lists refused). Nothing in them is compared, repaired or pruned.
    unlisted: set[str] = field(default_factory=set)
    # Namespaces whose lists Sluice may no longer make (its RoleBinding there is gone).
    locked_out: set[str] = field(default_factory=set)
    requests: int = 0

    def get(self, api_version: str, kind: str, name: str, namespace: str) -> dict | None:
        """An object by name, as the drivers' observe looks it up."""
        shared = (self.shared_kafka or {}).get("metadata") or {}
        if kind == "Kafka" and (shared.get("name"), shared.get("namespace")) == (name, namespace):
            return self.shared_kafka
        return self.objects.get((kind, namespace or "", name))


class Lister(Protocol):
    """What a cell's resync (clusters.resync) needs of a data plane: one listing of everything
    Sluice manages there, and writes of single objects."""

    def inventory(self, dedicated: dict[str, str]) -> Inventory:
        """List what Sluice manages beside the cell's shared Kafka and in the dedicated
        namespaces given (namespace -> the cluster id it must be labelled with)."""

    def comparable(self, manifest: dict) -> dict:
        """The manifest as it would be listed (e.g. a Secret's stringData as its data)."""

    def observe_listed(self, spec: ClusterSpec, inventory: Inventory) -> Observation:
        """The cluster's observation, read from the inventory (no request)."""

    def apply_objects(
        self, spec: ClusterSpec, manifests: list[dict], *, guard: Callable[[], None]
    ) -> None:
        """Apply these manifests of the cluster (a subset of its rendering, in its order)."""

    def delete_object(self, listed: dict, *, guard: Callable[[], None]) -> None:
        """Delete one listed object (gone already is fine)."""
