"""Benchmark of a cell's resync by listing (clusters.resync) on the real test API server, with
the Strimzi emulator answering: 5,000 serverless clusters (``SLUICE_BENCH_RESYNC_CLUSTERS``),
each with 2 topics and 1 credential, on one cell, plus 20 dedicated clusters
(``SLUICE_BENCH_RESYNC_DEDICATED``).

Setup, not counted: the database rows written in bulk; every object the clusters render
server-side-applied straight from their rendering by a few threads; the emulator's statuses
waited for, and passes run until one finds nothing to do.

Measured, each pass in this process with every request it sends counted (a wrapper around the
API client's one request method):

- **no drift**: a full pass with nothing drifted (asserted: no write);
- **1 % drifted**: a topic's config edited behind Sluice's back on 0.5 % of the serverless
  clusters, a credential's KafkaUser deleted on another 0.5 %, and a node pool of one dedicated
  cluster resized: every drifted object repaired (asserted), and a pass after the emulator
  answered finds nothing more (asserted).

Baseline in the same run: the per-cluster path the periodic sweep ran before (one full
``reconciler.reconcile`` per cluster: apply every object, GET each back), timed on a sample
(``SLUICE_BENCH_RESYNC_SAMPLE`` serverless clusters and two dedicated ones) and extrapolated
to the whole cell. Target: a pass within 60 s, requests O(kinds + drifted).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from kubernetes import client

from clusters import naming, reconciler, resync
from clusters.drivers import lister_for
from clusters.drivers.kubernetes import PRUNABLE
from clusters.models import Cluster, ClusterState, Credential, Tier, Topic, new_sealed_password
from tenants.models import Organization
from tests.support.kube_requests import counted
from tests.support.services import wait_for
from tests.support.strimzi_emulator import GROUP, VERSION

pytestmark = pytest.mark.bench

SERVERLESS = int(os.environ.get("SLUICE_BENCH_RESYNC_CLUSTERS", "5000"))
DEDICATED = int(os.environ.get("SLUICE_BENCH_RESYNC_DEDICATED", "20"))
SAMPLE = int(os.environ.get("SLUICE_BENCH_RESYNC_SAMPLE", "100"))
DEDICATED_SAMPLE = min(2, DEDICATED)
TARGET_SECONDS = 60.0
DRIFT_SHARE = 0.01
APPLY_THREADS = 4
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _rows(cell) -> tuple[list[Cluster], list[Cluster]]:
    """The clusters, their topics and credentials, in bulk."""
    serverless, dedicated = Tier.objects.get(slug="serverless"), Tier.objects.get(slug="dedicated")
    organizations = Organization.objects.bulk_create(
        (
            Organization(public_id=f"org_resyncbench{n:05}", name=f"Resync bench {n}")
            for n in range(SERVERLESS // 10 + 1)
        ),
        batch_size=2000,
    )
    shapes = [(serverless, 1)] * SERVERLESS + [(dedicated, 1)] * DEDICATED
    clusters = Cluster.unscoped_all_tenants.bulk_create(
        (
            Cluster(
                public_id=f"kc_resync{n:011}",
                organization=organizations[n % len(organizations)],
                name=f"c-{n:05}",
                tier=tier,
                capacity_units=units,
                cell=cell,
            )
            for n, (tier, units) in enumerate(shapes)
        ),
        batch_size=2000,
    )
    Topic.unscoped_all_tenants.bulk_create(
        (
            Topic(
                organization_id=c.organization_id,
                cluster=c,
                name=name,
                partitions=1,
                retention_ms=86_400_000,
            )
            for c in clusters
            for name in ("orders", "payments")
        ),
        batch_size=5000,
    )
    credentials = []
    for n, c in enumerate(clusters):
        public_id = f"cred_resync{n:011}"
        credentials.append(
            Credential(
                public_id=public_id,
                organization_id=c.organization_id,
                cluster=c,
                name="app",
                username=naming.credential_username(c.public_id, public_id),
                password_encrypted=new_sealed_password(),
            )
        )
    Credential.unscoped_all_tenants.bulk_create(credentials, batch_size=5000)
    return clusters[:SERVERLESS], clusters[SERVERLESS:]


def _create_objects(cell) -> int:
    """Every object the cell's clusters render, applied from the rendering (the dedicated
    clusters through the driver, which waits for each namespace's binding)."""
    desired = resync.desired_state(cell)
    lister = lister_for(cell)
    plans = list(desired.planned.values())
    shared = [p for p in plans if p.namespace is None]
    # The first in turn: the dynamic client's discovery is made once, before the threads.
    lister.driver.apply_manifests(list(shared[0].manifests.values()), guard=_none)
    with ThreadPoolExecutor(APPLY_THREADS) as pool:
        list(
            pool.map(
                lambda p: lister.driver.apply_manifests(list(p.manifests.values()), guard=_none),
                shared,
            )
        )
    for plan in plans:
        if plan.namespace is not None:
            lister.driver.apply(plan.spec, prune=False)
    return sum(len(p.manifests) for p in plans)


def _none() -> None:
    pass


def _settle(cell, emulator, strimzi_objects: int) -> int:
    """Wait for the emulator to answer every object, then pass until a pass finds nothing."""

    def answered() -> bool:
        time.sleep(1)
        return sum(emulator.handled.values()) >= strimzi_objects

    wait_for(
        answered,
        timeout=1800,
        what=f"the emulator to answer {strimzi_objects} objects ({emulator.handled})",
    )
    passes = 0

    def quiet() -> bool:
        nonlocal passes
        passes += 1
        result = resync.resync_cell(cell)
        assert result.failed == 0
        return not (result.repaired or result.pruned or result.recorded)

    wait_for(quiet, timeout=1800, what="a pass with nothing to do")
    return passes


def _pass(cell) -> tuple[resync.ResyncResult, float, list[tuple[str, str]]]:
    lister = lister_for(cell)
    with counted(lister) as sent:
        started = time.monotonic()
        result = resync.resync_cell(cell, lister=lister)
        seconds = time.monotonic() - started
    assert (result.busy, result.failed) == (False, 0)
    return result, seconds, sent


def _baseline(cell, serverless: list[Cluster], dedicated: list[Cluster]) -> dict:
    """The per-cluster path on a sample, extrapolated to the cell."""
    lister = lister_for(cell)
    figures = {}
    for label, sample, whole in (
        ("serverless", serverless[:SAMPLE], len(serverless)),
        ("dedicated", dedicated[:DEDICATED_SAMPLE], len(dedicated)),
    ):
        if not sample:
            continue
        with counted(lister) as sent:
            started = time.monotonic()
            for cluster in sample:
                assert reconciler.reconcile(cluster.pk) == reconciler.Outcome.CONVERGED
            seconds = time.monotonic() - started
        figures[label] = {
            "sample": len(sample),
            "seconds": round(seconds, 2),
            "requests": len(sent),
            "extrapolated_seconds": round(seconds / len(sample) * whole, 1),
            "extrapolated_requests": round(len(sent) / len(sample) * whole),
        }
    return {
        **figures,
        "extrapolated_seconds": round(sum(f["extrapolated_seconds"] for f in figures.values()), 1),
        "extrapolated_requests": sum(f["extrapolated_requests"] for f in figures.values()),
    }


def _drift(kube, cell, serverless: list[Cluster], dedicated: list[Cluster]) -> set:
    """Edit and delete objects behind Sluice's back; the keys of those it must repair."""
    api = client.CustomObjectsApi(kube.api_client())
    shared = cell.shared_kafka_namespace
    count = max(2, round((len(serverless) + len(dedicated)) * DRIFT_SHARE))
    step = max(1, len(serverless) // count)
    chosen = serverless[::step][:count]
    plans = resync.desired_state(cell).planned
    drifted = set()
    for n, cluster in enumerate(chosen):
        manifests = plans[cluster.public_id].manifests
        if n % 2 == 0:
            topic = next(k for k in manifests if k[0] == "KafkaTopic")
            api.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                shared,
                "kafkatopics",
                topic[2],
                {"spec": {"config": {"retention.ms": "1"}}},
            )
            drifted.add(topic)
        else:
            user = next(
                k
                for k in manifests
                if k[0] == "KafkaUser" and "observer" not in k[2] and "offsets" not in k[2]
            )
            api.delete_namespaced_custom_object(GROUP, VERSION, shared, "kafkausers", user[2])
            drifted.add(user)
    if dedicated:
        plan = plans[dedicated[0].public_id]
        pool = next(k for k in plan.manifests if k[0] == "KafkaNodePool")
        api.patch_namespaced_custom_object(
            GROUP, VERSION, pool[1], "kafkanodepools", pool[2], {"spec": {"replicas": 7}}
        )
        drifted.add(pool)
    return drifted


def _answered(kube, keys: set) -> bool:
    """Whether the emulator has answered the current generation of each object."""
    api = client.CustomObjectsApi(kube.api_client())
    plurals = {
        "KafkaTopic": "kafkatopics",
        "KafkaUser": "kafkausers",
        "KafkaNodePool": "kafkanodepools",
    }
    for kind, namespace, name in keys:
        found = api.get_namespaced_custom_object(GROUP, VERSION, namespace, plurals[kind], name)
        if (found.get("status") or {}).get("observedGeneration") != found["metadata"]["generation"]:
            return False
    return True


@pytest.mark.timeout(5400)
@pytest.mark.django_db(transaction=True)
def test_fleet_resync(kube, serverless_cell, strimzi_emulator, bench_report, settings):
    settings.SLUICE_DATAPLANE_DRIVER = "kubernetes"
    cell = serverless_cell
    started = time.monotonic()
    serverless, dedicated = _rows(cell)
    objects = _create_objects(cell)
    # Topics and users of every cluster, pools and Kafkas of the dedicated ones (the shared
    # Kafka answered already).
    strimzi_objects = len(serverless) * 5 + len(dedicated) * (5 + 3)
    passes = _settle(cell, strimzi_emulator, strimzi_objects)
    assert Cluster.unscoped_all_tenants.filter(cell=cell, state=ClusterState.READY).count() == (
        len(serverless) + len(dedicated)
    )
    setup_seconds = time.monotonic() - started

    quiet, quiet_seconds, quiet_sent = _pass(cell)
    assert quiet.clusters == len(serverless) + len(dedicated)
    assert (quiet.repaired, quiet.pruned, quiet.recorded) == ([], [], 0)
    assert [s for s in quiet_sent if s[0] in WRITES] == []

    drifted = _drift(kube, cell, serverless, dedicated)
    repair, repair_seconds, repair_sent = _pass(cell)
    assert set(repair.repaired) == drifted, "every drifted object repaired, nothing else"
    assert repair.pruned == []
    wait_for(
        lambda: _answered(kube, drifted), timeout=120, what="the emulator to answer the repairs"
    )
    after, _, after_sent = _pass(cell)
    assert (after.repaired, after.pruned) == ([], [])
    assert [s for s in after_sent if s[0] in WRITES] == []

    baseline = _baseline(cell, serverless, dedicated)
    kinds = len(PRUNABLE)
    bench_report.record(
        "fleet_resync",
        {
            "serverless_clusters": len(serverless),
            "dedicated_clusters": len(dedicated),
            "objects": objects,
            "listed": quiet.listed,
            "setup_seconds_not_counted": round(setup_seconds, 1),
            "settling_passes": passes,
            "kinds": kinds,
            "page_size": 500,
            "no_drift": {
                "seconds": round(quiet_seconds, 2),
                "requests": len(quiet_sent),
                "writes": 0,
                "steps": quiet.seconds,
            },
            "drift": {
                "drifted": len(drifted),
                "repaired": len(repair.repaired),
                "seconds": round(repair_seconds, 2),
                "requests": len(repair_sent),
                "writes": sum(1 for s in repair_sent if s[0] in WRITES),
                "steps": repair.seconds,
                "second_pass_repaired": len(after.repaired),
            },
            "baseline": baseline,
            "ratio_no_drift_to_baseline": round(
                quiet_seconds / baseline["extrapolated_seconds"], 4
            ),
            "ratio_requests_to_baseline": round(
                len(quiet_sent) / baseline["extrapolated_requests"], 4
            ),
            "target_seconds": TARGET_SECONDS,
            "met": max(quiet_seconds, repair_seconds) <= TARGET_SECONDS,
        },
    )
