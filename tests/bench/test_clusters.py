"""Benchmarks of the clusters capability. The numbers are reported whatever they are, with
whether each target was met; a benchmark fails only when a measurement could not be made (a
cluster never became ready, an answer was an error).

The list benchmark comes first, while the machine runs only the web server and the databases;
the create benchmark then starts the Kubernetes test environment and the Celery workers."""

from __future__ import annotations

import logging
import os
import statistics
import time
from contextlib import contextmanager

import pytest
import redis
import requests
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from clusters import services as cluster_services
from clusters.desired_state import build_spec
from clusters.models import Cluster, OrganizationQuota
from tenants.audit import Actor
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.bench.conftest import NPROC, REGION, UNLIMITED, WEB_THREADS, WEB_WORKERS
from tests.bench.cpu import CpuMeter
from tests.bench.creates import (
    ClusterApi,
    Phase,
    reconcile_task_seconds,
    run_phase,
    server_timestamps,
)
from tests.bench.dataplane import run_data_plane_phase
from tests.bench.loadgen import load_generator
from tests.bench.pgwatch import LockWaitSampler
from tests.bench.report import CREATE_CPU_TARGET_MS, CREATE_P99_TARGET_MS, LIST_RATIO_TARGET
from tests.bench.stats import distribution_ms
from tests.bench.urls import BARE_LIST_PATH
from tests.factories import make_api_key, make_cell, make_org
from tests.support.processes import database_url

pytestmark = [pytest.mark.bench, pytest.mark.django_db(transaction=True)]

LISTED_CLUSTERS = 50
PAGE_SIZES = (10, 25, 50)
ROUNDS = 5
MAX_REQUESTS = 20_000
MAX_SECONDS = 5.0
WARMUP_SECONDS = 2.0
IN_PROCESS_REQUESTS = 100

# SLUICE_BENCH_CREATES lowers the creates per phase while a change is being developed.
CREATES = int(os.environ.get("SLUICE_BENCH_CREATES", "200"))
CONCURRENT_CLIENTS = 20
WARMUP_CREATES = 10  # the first requests and reconciles of a process pay for imports, discovery
POLL_INTERVAL = 0.02
CREATE_TIMEOUT = 30.0
PHASE_TIMEOUT = 600.0


def progress(message: str) -> None:
    print(f"\n[bench] {message}", flush=True)


@contextmanager
def quiet(logger_name: str):
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def bench_organization(name: str, *, max_clusters: int):
    organization = make_org(name=name)
    OrganizationQuota.objects.update_or_create(
        organization=organization, defaults={"max_clusters": max_clusters}
    )
    _, key = make_api_key(organization, Role.DEVELOPER)
    return organization, key


def record_services(report) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    redis_version = redis.Redis.from_url(django_settings.REDIS_URL).info()["redis_version"]
    report.setup["services"] = f"PostgreSQL {postgres}, Redis {redis_version}"


# Cluster list -----------------------------------------------------------------------------------


@pytest.mark.timeout(900)
def test_cluster_list_against_a_bare_view(web_server, bench_report, settings):
    record_services(bench_report)
    settings.SLUICE_DATAPLANE_DRIVER = "simulated"  # the listed clusters turn ready in-process
    settings.SLUICE_RATE_LIMIT_ORG_PER_MINUTE = int(UNLIMITED)  # as on the benchmarks' server
    settings.SLUICE_RATE_LIMIT_CALLER_PER_MINUTE = int(UNLIMITED)
    organization, key = bench_organization("Bench Lists", max_clusters=LISTED_CLUSTERS + 10)
    make_cell(REGION)
    with tenant_scope(organization), quiet("celery.app.trace"):  # the in-process reconciles
        for index in range(LISTED_CLUSTERS):
            cluster_services.cluster_create(
                organization=organization,
                actor=Actor(system="bench"),
                name=f"listed-{index:02}",
                tier_slug="serverless",
                region=REGION,
            )

    api_path = f"/api/v1/orgs/{organization.public_id}/clusters/"
    bare_path = "/" + BARE_LIST_PATH.format(org=organization.public_id)
    settings.ROOT_URLCONF = "tests.bench.urls"
    queries = queries_per_request(key, api_path, bare_path)
    in_process = {
        "api": milliseconds_per_request(Client(HTTP_AUTHORIZATION=f"Bearer {key}"), api_path),
        "bare": milliseconds_per_request(Client(), bare_path),
    }

    auth = {"Authorization": f"Bearer {key}"}
    api_url, bare_url = web_server.url + api_path, web_server.url + bare_path
    api_rows = requests.get(api_url, headers=auth, timeout=30).json()["results"]
    bare_rows = requests.get(bare_url, timeout=30).json()["results"]
    assert len(api_rows) == LISTED_CLUSTERS
    assert [(r["id"], r["name"], r["state"]) for r in api_rows] == [
        (r["public_id"], r["name"], r["state"]) for r in bare_rows
    ], "the bare view must return the same rows as the API"

    connections = WEB_WORKERS * WEB_THREADS
    generator = load_generator(connections=connections, threads=NPROC)
    views = {"bare": (bare_url, {}), "api": (api_url, auth)}
    for url, headers in views.values():
        generator.run(url, headers=headers, max_requests=MAX_REQUESTS, max_seconds=WARMUP_SECONDS)
    rounds: dict[str, list] = {view: [] for view in views}
    for _ in range(ROUNDS):  # alternating, so that drift on the machine hits both alike
        for view, (url, headers) in views.items():
            rounds[view].append(
                generator.run(
                    url, headers=headers, max_requests=MAX_REQUESTS, max_seconds=MAX_SECONDS
                )
            )

    summary = {view: summarize_rounds(results) for view, results in rounds.items()}
    ratio = summary["api"]["per_second"] / summary["bare"]["per_second"]
    paired = [
        round(api.per_second / bare.per_second, 2) if bare.per_second else None
        for bare, api in zip(rounds["bare"], rounds["api"], strict=True)
    ]
    bench_report.record(
        "cluster_list",
        {
            "clusters": LISTED_CLUSTERS,
            "page_size": LISTED_CLUSTERS,
            "load": {
                "tool": generator.tool,
                "connections": connections,
                "threads": generator.threads,
                "rounds": ROUNDS,
                "max_requests": MAX_REQUESTS,
                "max_seconds": MAX_SECONDS,
            },
            **summary,
            "ratio": round(ratio, 3),
            "ratio_per_round": paired,
            "target_ratio": LIST_RATIO_TARGET,
            "target_met": ratio >= LIST_RATIO_TARGET,
            "in_process_ms_per_request": in_process,
            "queries": queries,
            "rounds": {view: [r.as_dict() for r in results] for view, results in rounds.items()},
        },
    )
    progress(f"cluster list: API / bare throughput {ratio:.2f} (per round: {paired})")
    failures = {view: s["failures"] for view, s in summary.items() if s["failures"]}
    assert not failures, f"error answers under load: {failures}"


def queries_per_request(key: str, api_path: str, bare_path: str) -> dict:
    """SQL statements per request, in this process, for each page size."""
    http = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert http.get(api_path).status_code == 200  # a key's first use is recorded: not counted
    counts, statements = {}, []
    for size in PAGE_SIZES:
        with CaptureQueriesContext(connection) as captured:
            response = http.get(api_path, {"limit": size})
        assert response.status_code == 200, response.content
        assert len(response.json()["results"]) == size
        counts[str(size)] = len(captured)
        statements = [query["sql"] for query in captured.captured_queries]
    with CaptureQueriesContext(connection) as captured:
        assert Client().get(bare_path).status_code == 200
    return {
        "api": counts,
        "bare": len(captured),
        "constant": len(set(counts.values())) == 1,
        f"api_sql_limit_{PAGE_SIZES[-1]}": statements,
    }


def milliseconds_per_request(http: Client, path: str) -> float:
    """Median time of one request served in this process, one at a time: the view's own cost,
    without HTTP, queueing or other processes."""
    timings = []
    for _ in range(IN_PROCESS_REQUESTS):
        started = time.perf_counter()
        response = http.get(path)
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200, response.content
    return round(statistics.median(timings) * 1e3, 2)


def summarize_rounds(results: list) -> dict:
    return {
        "requests": sum(r.requests for r in results),
        "failures": sum(r.failures for r in results),
        "per_second": round(statistics.median(r.per_second for r in results), 1),
        "p50_ms": round(statistics.median(r.p50_ms for r in results), 2),
        "p99_ms": round(statistics.median(r.p99_ms for r in results), 2),
    }


# Create -> ready --------------------------------------------------------------------------------


@pytest.mark.kube
@pytest.mark.celery_worker
@pytest.mark.timeout(2400)
def test_serverless_create_to_ready_latency(
    serverless_cell, celery_workers, web_server, bench_report
):
    record_services(bench_report)
    bench_report.setup["workers"] = (
        f"{len(celery_workers)} celery worker processes (solo pool) on Redis; etcd, "
        "kube-apiserver and kube-controller-manager on 127.0.0.1; the Strimzi emulator in the "
        "test process"
    )
    organization, key = bench_organization(
        "Bench Creates", max_clusters=2 * CREATES + WARMUP_CREATES + 10
    )

    def new_api() -> ClusterApi:
        return ClusterApi(web_server.url, organization.public_id, key)

    bounds = {
        "region": REGION,
        "poll_interval": POLL_INTERVAL,
        "create_timeout": CREATE_TIMEOUT,
        "phase_timeout": PHASE_TIMEOUT,
    }
    warmup = run_phase(
        "warm-up",
        new_api,
        [f"warm-up-{i}" for i in range(WARMUP_CREATES)],
        clients=min(WARMUP_CREATES, 2 * NPROC),
        **bounds,
    )
    assert not warmup.errors, warmup.errors

    with tenant_scope(organization):
        template = build_spec(Cluster.objects.filter(organization=organization).latest("pk"))
    data_plane = {}
    for name, clients in (("sequential", 1), ("concurrent", CONCURRENT_CLIENTS)):
        with CpuMeter() as cpu:
            floor = run_data_plane_phase(
                serverless_cell,
                template,
                prefix=f"floor{clients}x",
                creates=CREATES,
                clients=clients,
                create_timeout=CREATE_TIMEOUT,
                phase_timeout=PHASE_TIMEOUT,
            )
        assert not floor.errors, floor.errors[:10]
        data_plane[name] = {
            "clients": clients,
            "completed": len(floor.seconds),
            "wall_seconds": round(floor.wall_seconds, 2),
            "creates_per_second": len(floor.seconds) / floor.wall_seconds,
            "latency_ms": distribution_ms(floor.seconds),
            "cpu_ms_per_create": cpu.per_unit(len(floor.seconds)),
        }
        progress(
            f"data plane alone ({clients} clients): p99 "
            f"{data_plane[name]['latency_ms']['p99']} ms, "
            f"{sum(data_plane[name]['cpu_ms_per_create'].values()):.0f} ms CPU per create"
        )

    phases = {}
    for name, clients in (("sequential", 1), ("concurrent", CONCURRENT_CLIENTS)):
        log_marks = [len(worker.log()) for worker in celery_workers]
        with (
            LockWaitSampler(database_url(connection.settings_dict)) as database,
            CpuMeter() as cpu,
        ):
            phase = run_phase(
                name, new_api, [f"{name}-{i}" for i in range(CREATES)], clients=clients, **bounds
            )
        worker_logs = [
            worker.log()[mark:] for worker, mark in zip(celery_workers, log_marks, strict=True)
        ]
        cpu_ms = cpu.per_unit(len(phase.samples))
        phases[name] = {
            **summarize(phase, worker_logs),
            "database": database.summary(),
            "cpu_ms_per_create": cpu_ms,
            "cpu_target_met": bool(cpu_ms) and sum(cpu_ms.values()) <= CREATE_CPU_TARGET_MS,
        }
        progress(
            f"create -> ready, {name} ({clients} clients): {len(phase.samples)}/{CREATES} ready "
            f"in {phase.wall_seconds:.0f}s, p99 {phases[name]['latency_ms']['p99']} ms"
        )

    bench_report.record(
        "create_to_ready",
        {
            "target_p99_ms": CREATE_P99_TARGET_MS,
            "target_cpu_ms_per_create": CREATE_CPU_TARGET_MS,
            "concurrent_over_sequential": concurrent_over_sequential(phases),
            "poll_interval_ms": POLL_INTERVAL * 1e3,
            "warmup_creates": WARMUP_CREATES,
            "create_timeout_seconds": CREATE_TIMEOUT,
            "phases": phases,
            "data_plane_alone": data_plane,
        },
    )
    errors = [f"{name}: {e}" for name, phase in phases.items() for e in phase["errors"]]
    assert not errors, errors[:10]


def concurrent_over_sequential(phases: dict) -> dict:
    """The concurrent phase against its baseline, the same creates one at a time: latency and
    CPU per create as ratios."""

    def ratio(value, baseline):
        return round(value / baseline, 2) if value is not None and baseline else None

    sequential, concurrent = phases["sequential"], phases["concurrent"]
    return {
        **{
            p: ratio(concurrent["latency_ms"][p], sequential["latency_ms"][p])
            for p in ("p50", "p99")
        },
        "cpu_ms_per_create": ratio(
            sum(concurrent["cpu_ms_per_create"].values()),
            sum(sequential["cpu_ms_per_create"].values()),
        ),
    }


def summarize(phase: Phase, worker_logs: list[str]) -> dict:
    samples = phase.samples
    stamps = server_timestamps(samples)
    to_row, row_to_reconciled, reconciled_to_seen = [], [], []
    for sample in samples:
        created, finished = stamps.get(sample.cluster_id, (None, None))
        if created is not None:
            to_row.append(created - sample.sent_at)
        if finished is not None:
            row_to_reconciled.append(finished - created)
            reconciled_to_seen.append(sample.seen_ready_at - finished)
    task_runs, retries = reconcile_task_seconds(worker_logs)
    latency = distribution_ms([sample.ready_seconds for sample in samples])
    complete = len(samples) == phase.requested
    return {
        "clients": phase.clients,
        "requested": phase.requested,
        "completed": len(samples),
        "wall_seconds": round(phase.wall_seconds, 2),
        "creates_per_second": len(samples) / phase.wall_seconds if phase.wall_seconds else 0.0,
        "latency_ms": latency,
        "target_met": complete and latency["p99"] <= CREATE_P99_TARGET_MS,
        "breakdown_ms": {
            "accepted": distribution_ms([sample.accepted_seconds for sample in samples]),
            "to_row": distribution_ms(to_row),
            "row_to_reconciled": distribution_ms(row_to_reconciled),
            "reconcile_task": distribution_ms(task_runs),
            "reconciled_to_seen": distribution_ms(reconciled_to_seen),
            "total": latency,
        },
        "polls_per_create": round(statistics.mean(s.polls for s in samples), 1) if samples else 0,
        "reconcile_tasks": len(task_runs),
        "reconcile_retries": retries,
        "errors": phase.errors,
    }
