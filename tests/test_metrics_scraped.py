"""The control plane's /metrics as Prometheus scrapes it: the test Prometheus (a real one, with
the bearer token) scrapes the live server, and its HTTP API answers the reconcile lag and a
request-latency series."""

from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from clusters.models import Cluster, Operation, OperationState
from tests.factories import UserFactory, make_cluster, make_org
from tests.support.metrics import ControlPlanePrometheus
from tests.support.services import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "prometheus-scrape-token-for-the-tests"


def unconverged(organization, name: str, *, waiting: timedelta) -> Cluster:
    """A cluster whose change the data plane has not been seen to reach, asked for ``waiting``
    ago."""
    cluster, _operation = make_cluster(organization, name=name)
    Cluster.unscoped_all_tenants.filter(pk=cluster.pk).update(observed_generation=0)
    Operation.unscoped_all_tenants.filter(cluster=cluster).update(
        state=OperationState.PENDING, created_at=timezone.now() - waiting
    )
    return cluster


def only_value(prometheus, expr: str) -> float | None:
    result = prometheus.query(expr)
    return float(result[0]["value"][1]) if len(result) == 1 else None


def test_prometheus_scrapes_the_reconcile_lag_and_the_request_latency(live_server, settings):
    settings.SLUICE_METRICS_TOKEN = TOKEN
    organization = make_org(owner=UserFactory(), name="Scraped Org")
    unconverged(organization, "orders", waiting=timedelta(minutes=10))
    unconverged(organization, "payments", waiting=timedelta(minutes=3))
    assert requests.get(f"{live_server.url}/healthz", timeout=10).status_code == 200
    target = live_server.url.removeprefix("http://")

    with ControlPlanePrometheus(target, token=TOKEN) as prometheus:
        wait_for(
            lambda: only_value(prometheus, 'up{job="sluice"}') == 1,
            timeout=60,
            what=f"Prometheus's first scrape of /metrics (log: {prometheus.log_path})",
        )
        assert only_value(prometheus, "sluice_reconcile_unconverged_clusters") == 2
        assert only_value(prometheus, "sluice_reconcile_lag_seconds") >= 600
        served = only_value(
            prometheus,
            'sluice_http_request_duration_seconds_count{view="healthz",method="GET",status="2xx"}',
        )
        assert served >= 1
        # Latency as an operator reads it: a quantile of the scrapes' own durations, once
        # Prometheus holds two points of the histogram.
        quantile = (
            "histogram_quantile(0.99, sum by (le) ("
            'rate(sluice_http_request_duration_seconds_bucket{view="metrics"}[1m])))'
        )
        wait_for(
            lambda: (only_value(prometheus, quantile) or 0) > 0,
            timeout=30,
            what="a latency quantile of the scrapes",
        )
