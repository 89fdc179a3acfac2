"""The tabs across the top of an organization's pages. Each app contributes its own from its
``AppConfig.ready``, so the frame (in this layer) names no page of a layer above it. A tab is
shown to members whose role grants its scope, in the order of ``position``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OrganizationTab:
    key: str  # the ``section`` of the pages it leads to, to mark it current
    label: str
    scope: str
    url_name: str  # takes the organization's public id
    position: int


_tabs: dict[str, OrganizationTab] = {}


def register_organization_tab(tab: OrganizationTab) -> None:
    """Add a tab (again: a second registration of the same key replaces the first)."""
    _tabs[tab.key] = tab


def organization_tabs() -> list[OrganizationTab]:
    return sorted(_tabs.values(), key=lambda tab: (tab.position, tab.key))
