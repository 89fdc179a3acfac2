"""The clusters layer's figures on the control plane's /metrics (``foundation.metrics``'s
registry, from ``ClustersConfig.ready``): how far the data plane is behind what tenants asked
for, and how many clusters are in each state. Computed at each scrape from the same reads as
the operators' fleet dashboard (``clusters.fleet``); no label names a tenant or a cluster."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from foundation.metrics import gauge, register_scrape_collector

from .fleet import clusters_by_state, reconcile_lag


def cluster_figures() -> Iterator[Metric]:
    lag = reconcile_lag()
    age = lag.age()
    yield gauge(
        "sluice_reconcile_unconverged_clusters",
        "Clusters whose desired generation the data plane has not been seen to reach.",
        lag.unconverged,
    )
    yield gauge(
        "sluice_reconcile_lag_seconds",
        "How long the oldest change not yet seen in the data plane has waited (0: none waits).",
        age.total_seconds() if age is not None else 0,
    )
    states = gauge("sluice_clusters", "Clusters not deleted, by state.", labels=["state"])
    for state, _label, count in clusters_by_state():
        states.add_metric([state], count)
    yield states


def register() -> None:
    register_scrape_collector("clusters", cluster_figures)
