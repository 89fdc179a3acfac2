"""The panels an organization's settings page shows above closing it, contributed by the apps
above this layer (the clusters app's quota use) from their ``AppConfig.ready``, so the page
names none of them. A panel's template finds what ``context(organization)`` returned as
``panel``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .models import Organization


@dataclass(frozen=True)
class SettingsPanel:
    key: str
    template: str
    context: Callable[[Organization], dict]
    position: int


_panels: dict[str, SettingsPanel] = {}


def register_settings_panel(panel: SettingsPanel) -> None:
    """Add a panel (again: a second registration of the same key replaces the first)."""
    _panels[panel.key] = panel


def settings_panels() -> list[SettingsPanel]:
    return sorted(_panels.values(), key=lambda panel: (panel.position, panel.key))
