"""The control plane's own metrics, in Prometheus's text format (``/metrics``).

Two kinds of figures:

- Counted as requests are served: each request's duration, labelled by the name of the view
  its URL resolved to, the method and the status class (``2xx``…). Never an organization, a
  cluster or a raw path: the series stay as few as the routes (``RequestMetricsMiddleware``).
- Computed when Prometheus scrapes, from PostgreSQL and the broker: each app contributes a
  function through ``register_scrape_collector`` from its ``AppConfig.ready`` (the reconcile
  lag from the clusters app, metering and the outboxes from billing, the queues from the
  control plane), so this module names none of them. A contribution that fails is logged and
  reported as ``sluice_metrics_collector_up{collector=…} 0``; the others are still served.

gunicorn serves with several processes: with ``PROMETHEUS_MULTIPROC_DIR`` set (a directory
writable by every process, emptied at start: ``controlplane.gunicorn_conf``), the request
figures of every process are summed from the files prometheus_client keeps there; without it,
each process reports its own (development, tests).
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

log = logging.getLogger("sluice.metrics")

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Requests that resolved to no view (an unknown path, a static file served before routing).
UNROUTED = "unrouted"

# The figures this process counts. Their own registry (not prometheus_client's global one):
# what /metrics serves is decided in ``exposition`` alone.
_process_registry = CollectorRegistry(auto_describe=True)

REQUEST_DURATION = Histogram(
    "sluice_http_request_duration_seconds",
    "Time to answer a request, by the name of its view, the method and the status class.",
    ["view", "method", "status"],
    registry=_process_registry,
)


# Scrape-time contributions ------------------------------------------------------------------


@dataclass(frozen=True)
class ScrapeCollector:
    """``collect()`` returns the metric families to serve, computed now."""

    name: str
    collect: Callable[[], Iterable[Metric]]


_scrape_collectors: dict[str, ScrapeCollector] = {}


def register_scrape_collector(name: str, collect: Callable[[], Iterable[Metric]]) -> None:
    """Add a contribution (again: a second registration of the same name replaces the
    first)."""
    _scrape_collectors[name] = ScrapeCollector(name, collect)


def scrape_collectors() -> list[ScrapeCollector]:
    return sorted(_scrape_collectors.values(), key=lambda collector: collector.name)


class _ScrapeTime:
    """Runs every contribution at each scrape, one failure not hiding the others."""

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "sluice_metrics_collector_up",
            "1 when the contribution's figures were computed at this scrape, 0 when it failed.",
            labels=["collector"],
        )
        for collector in scrape_collectors():
            try:
                families = list(collector.collect())
            except Exception:  # one failing source must not blank the whole scrape
                log.exception("metrics collector %s failed", collector.name)
                up.add_metric([collector.name], 0)
                continue
            up.add_metric([collector.name], 1)
            yield from families
        yield up


class _ThisProcess:
    """The figures counted by this process alone (no multiprocess directory)."""

    def collect(self) -> Iterable[Metric]:
        return _process_registry.collect()


def multiprocess_dir() -> str:
    return os.environ.get(MULTIPROCESS_DIR_VARIABLE, "")


def exposition() -> bytes:
    """Everything ``/metrics`` serves, in Prometheus's text format."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(_ScrapeTime())
    return generate_latest(registry)


def gauge(name: str, documentation: str, value: float | None = None, **kwargs) -> Metric:
    """A gauge family, with its one value when it has no labels."""
    return GaugeMetricFamily(name, documentation, value=value, **kwargs)


# Serving --------------------------------------------------------------------------------------


def scrape_allowed(request: HttpRequest) -> bool:
    """Whether the request may read the metrics: with ``SLUICE_METRICS_TOKEN`` set, only with
    ``Authorization: Bearer <that token>``; without one, anyone (production refuses to start
    without a token unless ``SLUICE_METRICS_PUBLIC`` says so)."""
    token = settings.SLUICE_METRICS_TOKEN
    if not token:
        return True
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(
        offered.strip().encode(), token.encode()
    )


def metrics_response(request: HttpRequest) -> HttpResponse:
    if not scrape_allowed(request):
        response = HttpResponse("metrics need the scrape token\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)


# Counting requests ----------------------------------------------------------------------------


def route_of(request: HttpRequest) -> str:
    """The name of the view the request's URL resolved to (``api:cluster-detail``), never its
    path."""
    match = getattr(request, "resolver_match", None)
    return match.view_name if match is not None else UNROUTED


class RequestMetricsMiddleware:
    """Times every request, from the first middleware to the response (first in
    ``MIDDLEWARE``)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        method = request.method if request.method in METHODS else "other"
        REQUEST_DURATION.labels(
            view=route_of(request), method=method, status=f"{response.status_code // 100}xx"
        ).observe(time.perf_counter() - started)
        return response
