"""Data-plane drivers: one interface, chosen per deployment (SLUICE_DATAPLANE_DRIVER)."""

from django.conf import settings

from .base import Driver, Observation


def driver_for(cell) -> Driver:
    if settings.SLUICE_DATAPLANE_DRIVER == "kubernetes":
        from .kubernetes import KubernetesDriver

        return KubernetesDriver.for_cell(cell)
    from .simulated import SimulatedDriver

    return SimulatedDriver(cell)


def probe_api_server(cell, *, timeout: float) -> bool:
    """Whether the cell's data-plane API answered within ``timeout`` seconds (False: the
    simulated data plane, which has none; raises when a real one does not answer)."""
    if settings.SLUICE_DATAPLANE_DRIVER != "kubernetes":
        return False
    from .kubernetes import probe

    probe(cell.kubeconfig or settings.SLUICE_KUBECONFIG, timeout=timeout)
    return True


__all__ = ["Driver", "Observation", "driver_for", "probe_api_server"]
