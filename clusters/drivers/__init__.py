"""Data-plane drivers: one interface, chosen per deployment (SLUICE_DATAPLANE_DRIVER)."""

from django.conf import settings

from .base import Driver, Observation


def driver_for(cell) -> Driver:
    if settings.SLUICE_DATAPLANE_DRIVER == "kubernetes":
        from .kubernetes import KubernetesDriver

        return KubernetesDriver.for_cell(cell)
    from .simulated import SimulatedDriver

    return SimulatedDriver(cell)


__all__ = ["Driver", "Observation", "driver_for"]
