"""Sustained reads under load: 200 concurrent clients for 60 s on the API's cluster list, a
cluster, and the operations list, in turn, through the benchmarks' gunicorn. Asserted: no
error answer. Reported against their targets: p50 and p99 (against the same mix at one client,
measured first in the same run) and each web worker's resident memory after the run (against
its memory before the load)."""

from __future__ import annotations

import os

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from clusters import services as cluster_services
from clusters.models import Cluster
from tenants.audit import Actor
from tenants.scoping import tenant_scope
from tests.bench.conftest import NPROC, REGION
from tests.bench.loadgen import load_generator
from tests.bench.report import SUSTAINED_RSS_TARGET_MB
from tests.bench.test_clusters import bench_organization, progress, quiet, record_services
from tests.factories import make_cell

pytestmark = [pytest.mark.bench, pytest.mark.django_db(transaction=True)]

CLIENTS = 200
# SLUICE_BENCH_SUSTAINED_SECONDS shortens the run while a change is being developed.
SECONDS = float(os.environ.get("SLUICE_BENCH_SUSTAINED_SECONDS", "60"))
BASELINE_SECONDS = max(5.0, SECONDS / 6)
WARMUP_SECONDS = 3.0
CLUSTERS = 25  # the list's page holds them all; each has its creation's operation
FETCHED_CLUSTERS = 5  # the gets go to these in turn
MAX_REQUESTS = 10**7  # bounded by time


@pytest.mark.timeout(900)
def test_sustained_reads_by_200_clients(web_server, bench_report, settings):
    record_services(bench_report)
    settings.SLUICE_DATAPLANE_DRIVER = "simulated"  # the clusters turn ready in-process
    organization, key = bench_organization("Bench Sustained", max_clusters=CLUSTERS + 10)
    make_cell(REGION)
    with tenant_scope(organization), quiet("celery.app.trace"):
        for index in range(CLUSTERS):
            cluster_services.cluster_create(
                organization=organization,
                actor=Actor(system="bench"),
                name=f"sustained-{index:02}",
                tier_slug="serverless",
                region=REGION,
            )
    base = f"/api/v1/orgs/{organization.public_id}"
    fetched = Cluster.unscoped_all_tenants.filter(organization=organization).order_by("pk")
    gets = [
        f"{base}/clusters/{public_id}/" for public_id in fetched.values_list("public_id", flat=True)
    ]
    endpoints = {
        "cluster list": f"{base}/clusters/",
        "cluster get": gets[0],
        "operations": f"{base}/operations/",
    }
    # One of each in turn; the gets go round the first few clusters.
    mix = tuple(
        path
        for get in gets[:FETCHED_CLUSTERS]
        for path in (endpoints["cluster list"], get, endpoints["operations"])
    )
    queries = queries_per_request(key, endpoints)

    auth = {"Authorization": f"Bearer {key}"}
    url = web_server.url + endpoints["cluster list"]
    rss = {"after start": web_server.worker_rss_mb()}
    warm = load_generator(connections=2 * len(rss["after start"]), threads=NPROC)
    warm.run(url, headers=auth, max_requests=MAX_REQUESTS, max_seconds=WARMUP_SECONDS, paths=mix)
    one = load_generator(connections=1, threads=1)
    baseline = one.run(
        url, headers=auth, max_requests=MAX_REQUESTS, max_seconds=BASELINE_SECONDS, paths=mix
    )
    rss["before the load"] = web_server.worker_rss_mb()
    progress(f"sustained load: {CLIENTS} clients for {SECONDS:.0f}s")
    many = load_generator(connections=CLIENTS, threads=NPROC)
    loaded = many.run(url, headers=auth, max_requests=MAX_REQUESTS, max_seconds=SECONDS, paths=mix)
    rss["after the load"] = web_server.worker_rss_mb()

    after = rss["after the load"]
    before = rss["before the load"]
    bench_report.record(
        "sustained_load",
        {
            "clients": CLIENTS,
            "seconds": SECONDS,
            "tool": many.tool,
            "threads": many.threads,
            "endpoints": {
                name: path.replace(base, "/api/v1/orgs/{org}") for name, path in endpoints.items()
            },
            "clusters": CLUSTERS,
            "fetched_clusters": FETCHED_CLUSTERS,
            "queries_per_request": queries,
            "baseline_one_client": baseline.as_dict(),
            "load": loaded.as_dict(),
            "p50_ratio_to_one_client": _ratio(loaded.p50_ms, baseline.p50_ms),
            "p99_ratio_to_one_client": _ratio(loaded.p99_ms, baseline.p99_ms),
            "rss_mb": {
                moment: {str(pid): mb for pid, mb in by_pid.items()}
                for moment, by_pid in rss.items()
            },
            "rss_max_mb_after": max(after.values()),
            "rss_ratio_after_to_before": _ratio(max(after.values()), max(before.values())),
            "target_rss_mb": SUSTAINED_RSS_TARGET_MB,
            "rss_target_met": all(mb <= SUSTAINED_RSS_TARGET_MB for mb in after.values()),
            "errors_target_met": loaded.failures == 0 and baseline.failures == 0,
        },
    )
    progress(
        f"sustained load: {loaded.requests} requests, {loaded.failures} failed, p50 "
        f"{loaded.p50_ms:.0f} ms, p99 {loaded.p99_ms:.0f} ms; worker RSS after "
        f"{sorted(after.values())} MB"
    )
    assert set(after) == set(before), "a web worker was replaced during the run"
    assert loaded.failures == 0, f"{loaded.failures} error answers under load"
    assert baseline.failures == 0, f"{baseline.failures} error answers at one client"


def _ratio(value: float, baseline: float) -> float | None:
    return round(value / baseline, 2) if baseline else None


def queries_per_request(key: str, endpoints: dict[str, str]) -> dict[str, int]:
    """SQL statements each endpoint runs, in this process (its first call not counted)."""
    http = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    counts = {}
    for name, path in endpoints.items():
        assert http.get(path).status_code == 200
        with CaptureQueriesContext(connection) as captured:
            assert http.get(path).status_code == 200
        counts[name] = len(captured)
    return counts
