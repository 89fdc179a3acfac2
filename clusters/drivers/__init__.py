"""Data-plane drivers: one interface, chosen per deployment (SLUICE_DATAPLANE_DRIVER)."""

from django.conf import settings

from ..cell_credentials import Connection, connection_for
from .base import Driver, Inventory, Lister, Observation


def driver_for(cell) -> Driver:
    if settings.SLUICE_DATAPLANE_DRIVER == "kubernetes":
        from .kubernetes import KubernetesDriver

        return KubernetesDriver.for_cell(cell)
    from .simulated import SimulatedDriver

    return SimulatedDriver(cell)


def lister_for(cell) -> Lister:
    """What the cell's resync lists and writes through (clusters.resync)."""
    if settings.SLUICE_DATAPLANE_DRIVER == "kubernetes":
        from .kubernetes_lister import KubernetesLister

        return KubernetesLister.for_cell(cell)
    from .simulated import SimulatedDriver

    return SimulatedDriver(cell)


def probe_api_server(cell, *, timeout: float) -> bool:
    """Whether the cell's data-plane API answered within ``timeout`` seconds (False: the
    simulated data plane, which has none; raises when a real one does not answer)."""
    if settings.SLUICE_DATAPLANE_DRIVER != "kubernetes":
        return False
    probe_connection(connection_for(cell), timeout=timeout)
    return True


def probe_connection(connection: Connection, *, timeout: float) -> None:
    """Ask a Kubernetes API server its version within ``timeout`` seconds, whatever the driver
    in use (raises when it does not answer): the admin's check of credentials being given."""
    from .kubernetes import probe

    probe(connection, timeout=timeout)


__all__ = [
    "Driver",
    "Inventory",
    "Lister",
    "Observation",
    "driver_for",
    "lister_for",
    "probe_api_server",
    "probe_connection",
]
