"""The panels a cluster's page shows between its credentials and its activity, contributed by
the apps above this layer (billing's usage chart) from their ``AppConfig.ready``, so the page
names none of them. A panel is shown to members whose role grants its scope, in the order of
``position``; its template finds what ``context(cluster)`` returned as ``panel``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .models import Cluster


@dataclass(frozen=True)
class ClusterPanel:
    key: str
    template: str
    scope: str
    context: Callable[[Cluster], dict]
    position: int


_panels: dict[str, ClusterPanel] = {}


def register_cluster_panel(panel: ClusterPanel) -> None:
    """Add a panel (again: a second registration of the same key replaces the first)."""
    _panels[panel.key] = panel


def cluster_panels() -> list[ClusterPanel]:
    return sorted(_panels.values(), key=lambda panel: (panel.position, panel.key))
