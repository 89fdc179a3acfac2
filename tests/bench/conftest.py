"""Fixtures of the benchmarks: the web server and Celery workers as separate processes on the
test database and Redis, a cell on the test Kubernetes API with its shared Kafka Ready, and the
report printed and written at the end of the run."""

from __future__ import annotations

import os
import shlex
import uuid
from contextlib import ExitStack

import pytest
from kubernetes import client

from controlplane import gunicorn_conf
from tests.bench.report import BenchReport
from tests.bench.server import GunicornServer
from tests.support.services import wait_for
from tests.support.strimzi_emulator import GROUP, VERSION
from tests.support.workers import CeleryWorker

NPROC = len(os.sched_getaffinity(0))
# The web server runs with production's gunicorn settings (controlplane.gunicorn_conf); one
# Celery worker process per CPU, as many as `celery worker` starts by default.
WEB_WORKERS = gunicorn_conf.workers
WEB_THREADS = gunicorn_conf.threads
CELERY_WORKERS = max(2, NPROC)
REGION = "eu-west-1"
# Rate limiting still runs on every request (a Redis round trip); its limits are raised so
# that the benchmarks measure the work rather than the refusals.
UNLIMITED = str(10**9)
BENCH_ENVIRONMENT = {
    "SLUICE_TEST_EAGER_TASKS": "false",
    "SLUICE_DATAPLANE_DRIVER": "kubernetes",
    "SLUICE_ROOT_URLCONF": "tests.bench.urls",
    "SLUICE_RATE_LIMIT_ORG_PER_MINUTE": UNLIMITED,
    "SLUICE_RATE_LIMIT_CALLER_PER_MINUTE": UNLIMITED,
}
REPORT_KEY = pytest.StashKey[BenchReport]()


@pytest.fixture(scope="session")
def bench_report(request) -> BenchReport:
    report = request.config.stash.get(REPORT_KEY, None)
    if report is None:
        report = request.config.stash[REPORT_KEY] = BenchReport()
    return report


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    report = config.stash.get(REPORT_KEY, None)
    if report is None or not report.sections:
        return
    command = shlex.join(["python", "-m", "pytest", *config.invocation_params.args])
    terminalreporter.section("Sluice benchmarks")
    for line in report.lines(command=command):
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"results: {report.write(command=command)}")


@pytest.fixture
def bench_environment(worker_environment) -> dict[str, str]:
    return {**worker_environment, **BENCH_ENVIRONMENT}


@pytest.fixture
def web_server(bench_environment, bench_report):
    bench_report.setup["web server"] = (
        f"gunicorn gthread, {WEB_WORKERS} workers x {WEB_THREADS} threads, with PostgreSQL "
        "and Redis, all on 127.0.0.1 of this machine"
    )
    with GunicornServer(env=bench_environment) as server:
        yield server


@pytest.fixture
def celery_workers(bench_environment):
    with ExitStack() as stack:
        yield [
            stack.enter_context(
                CeleryWorker(env=bench_environment, hostname=f"bench-worker-{index}@%h")
            )
            for index in range(CELERY_WORKERS)
        ]


@pytest.fixture
def serverless_cell(kube, strimzi_emulator):
    """The region's only cell, on the test API server, room for many shared clusters, and its
    shared Kafka Ready (the emulator answers at once)."""
    from clusters import cell_credentials
    from clusters.catalog import seed_catalog
    from clusters.models import Cell, Tier, TierPrice
    from tests.support.cells import kube_credentials
    from tests.support.shared_kafka import create_shared_kafka

    seed_catalog(Tier, TierPrice)
    namespace = f"sluice-bench-{uuid.uuid4().hex[:8]}"
    Cell.objects.filter(region=REGION).update(accepting=False)
    cell, _ = Cell.objects.update_or_create(
        slug=f"{REGION}-bench",
        defaults={
            "region": REGION,
            "accepting": True,
            **cell_credentials.sealed_columns(kube_credentials(kube)),
            "shared_kafka_namespace": namespace,
            "shared_kafka_name": "shared",
            "max_shared_clusters": 100_000,
        },
    )
    create_shared_kafka(kube.api_client(), namespace)
    objects = client.CustomObjectsApi(kube.api_client())

    def shared_kafka_ready() -> bool:
        kafka = objects.get_namespaced_custom_object(GROUP, VERSION, namespace, "kafkas", "shared")
        conditions = (kafka.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    wait_for(shared_kafka_ready, timeout=30, what="the shared Kafka to be Ready")
    return cell
