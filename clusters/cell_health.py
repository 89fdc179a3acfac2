"""Whether each cell answers: its Kubernetes API server and its Prometheus, for the operators'
fleet dashboard. Each probe waits at most ``SLUICE_FLEET_PROBE_TIMEOUT_SECONDS``, and a cell's
answers are kept in the cache for ``SLUICE_FLEET_HEALTH_CACHE_SECONDS``, so reloading the
dashboard does not probe a slow cell again and again. The probes touch no database."""

from __future__ import annotations

import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from foundation.text import error_summary

from . import drivers
from .models import Cell

CACHE_KEY = "fleet:cell-health:{pk}"
PROBING_AT_ONCE = 8


@dataclass(frozen=True)
class Probe:
    """One answer: ``ok`` or not, and what to show."""

    ok: bool
    text: str


@dataclass(frozen=True)
class CellHealth:
    api_server: Probe
    prometheus: Probe
    checked_at: str  # ISO time of the probes (kept in the cache as plain values)


def cells_health(cells: list[Cell]) -> dict[int, CellHealth]:
    """Each cell's probes, the cells probed side by side: a page waits for the slowest cell's
    timeout, not for the sum of them."""
    if not cells:
        return {}
    with ThreadPoolExecutor(max_workers=min(PROBING_AT_ONCE, len(cells))) as pool:
        return dict(zip([cell.pk for cell in cells], pool.map(cell_health, cells), strict=True))


def cell_health(cell: Cell) -> CellHealth:
    """The cell's probes, from the cache while fresh."""
    key = CACHE_KEY.format(pk=cell.pk)
    cached = cache.get(key)
    if cached is not None:
        return CellHealth(
            api_server=Probe(*cached["api_server"]),
            prometheus=Probe(*cached["prometheus"]),
            checked_at=cached["checked_at"],
        )
    health = CellHealth(
        api_server=probe_api_server(cell),
        prometheus=probe_prometheus(cell),
        checked_at=timezone.now().isoformat(),
    )
    cache.set(
        key,
        {
            "api_server": (health.api_server.ok, health.api_server.text),
            "prometheus": (health.prometheus.ok, health.prometheus.text),
            "checked_at": health.checked_at,
        },
        timeout=settings.SLUICE_FLEET_HEALTH_CACHE_SECONDS,
    )
    return health


def probe_api_server(cell: Cell) -> Probe:
    try:
        real = drivers.probe_api_server(cell, timeout=settings.SLUICE_FLEET_PROBE_TIMEOUT_SECONDS)
    except Exception as error:  # any failure to answer is what the operator must see
        return Probe(False, error_summary(error, longest=200))
    return Probe(True, "reachable" if real else "simulated data plane")


def probe_prometheus(cell: Cell) -> Probe:
    """Prometheus's own readiness endpoint (``/-/ready``) answers 200 once it serves queries."""
    if not cell.prometheus_url:
        return Probe(False, "no Prometheus: not metered")
    url = f"{cell.prometheus_url.rstrip('/')}/-/ready"
    try:
        timeout = settings.SLUICE_FLEET_PROBE_TIMEOUT_SECONDS
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as error:
        return Probe(False, f"answers {error.code}")
    except (OSError, ValueError) as error:
        return Probe(False, error_summary(error, longest=200))
    return Probe(status == 200, "reachable" if status == 200 else f"answers {status}")
