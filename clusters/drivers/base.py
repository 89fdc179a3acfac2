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
