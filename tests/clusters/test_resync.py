"""A cell's resync by listing (clusters.resync) against the real test API server, with the
Strimzi CRDs and the operator emulator: what it writes (only what drifted), what it deletes
(only what Sluice labelled and no cluster wants) and the status it records from its lists."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from kubernetes import client

from clusters import naming, reconciler, resync, services
from clusters.drivers import lister_for
from clusters.drivers.base import key_of
from clusters.drivers.kubernetes_lister import KubernetesLister
from clusters.models import Cluster, Operation, SimulatedObject
from clusters.rendering import render
from clusters.tasks import reconcile_fleet
from tenants.scoping import tenant_scope
from tests.clusters.test_dataplane_rbac import (  # noqa: F401 - sluice_account is a fixture
    ACCOUNT_USER,
    cell_as_account,
    install_shared_role,
    refused,
    sluice_account,
)
from tests.clusters.test_reconciler_kube import ACTOR, converge, new_cluster
from tests.factories import UserFactory, make_cluster, make_org
from tests.support.kube_requests import counted
from tests.support.services import wait_for
from tests.support.shared_kafka import create_shared_kafka
from tests.support.strimzi_emulator import GROUP, VERSION

pytestmark = [pytest.mark.django_db]
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def writes(sent: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(method, url) for method, url in sent if method in WRITES]


def with_topic_and_credential(cluster: Cluster) -> Cluster:
    with tenant_scope(cluster.organization):
        services.topic_create(cluster=cluster, actor=ACTOR, name="orders", partitions=1)
        services.credential_create(cluster=cluster, actor=ACTOR, name="app")
    return converge(cluster)


def custom(kube) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube.api_client())


def listed_keys(kube, cluster_id: str, namespace: str) -> set[tuple[str, str]]:
    found = set()
    for plural, kind in (("kafkatopics", "KafkaTopic"), ("kafkausers", "KafkaUser")):
        items = custom(kube).list_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, label_selector=f"sluice.io/cluster={cluster_id}"
        )["items"]
        found |= {(kind, item["metadata"]["name"]) for item in items}
    return found


def resynced(cell) -> resync.ResyncResult:
    result = resync.resync_cell(cell)
    assert (result.busy, result.failed) == (False, 0), result
    return result


def settled(cell) -> None:
    """Once the emulator answered every repair, a pass finds nothing more to do."""

    def nothing_left() -> bool:
        result = resynced(cell)
        return not (result.repaired or result.pruned or result.recorded)

    wait_for(nothing_left, timeout=30, what="a pass with nothing to do")


@pytest.fixture
def fleet(kube, dataplane):
    """A ready serverless cluster and a ready dedicated one, each with a topic and a
    credential, on the test cell."""
    serverless = with_topic_and_credential(new_cluster("serverless")[0])
    dedicated = with_topic_and_credential(new_cluster("dedicated", capacity_units=1)[0])
    assert serverless.state == dedicated.state == "ready"
    settled(dataplane)
    return serverless, dedicated


@pytest.mark.kube
def test_nothing_drifted_means_no_write_and_one_list_per_kind(kube, dataplane, fleet):
    lister = lister_for(dataplane)
    with counted(lister) as sent:
        result = resync.resync_cell(dataplane, lister=lister)
    assert (result.repaired, result.pruned, result.recorded) == ([], [], 0)
    assert writes(sent) == []
    # Beside the shared Kafka: a LIST of KafkaUsers, KafkaTopics and Secrets and a GET of the
    # Kafka; in the dedicated namespace: a GET of it and a LIST per kind Sluice writes there.
    assert len(sent) == result.listing_requests == 3 + 1 + 1 + 9
    lists = [url for _, url in sent if "limit=500" in url]
    assert len(lists) == 3 + 9
    assert all("labelSelector=app.kubernetes.io" in url and "sluice" in url for url in lists)


@pytest.mark.kube
def test_edited_and_deleted_objects_are_repaired(kube, dataplane, fleet):
    serverless, dedicated = fleet
    shared = dataplane.shared_kafka_namespace
    namespace = naming.dedicated_namespace(dedicated.public_id)
    api = custom(kube)
    topics = api.list_namespaced_custom_object(
        GROUP,
        VERSION,
        shared,
        "kafkatopics",
        label_selector=f"sluice.io/cluster={serverless.public_id}",
    )["items"]
    topic = topics[0]["metadata"]["name"]
    api.patch_namespaced_custom_object(
        GROUP, VERSION, shared, "kafkatopics", topic, {"spec": {"partitions": 7}}
    )
    users = api.list_namespaced_custom_object(
        GROUP,
        VERSION,
        shared,
        "kafkausers",
        label_selector=f"sluice.io/cluster={serverless.public_id}",
    )["items"]
    user = users[0]["metadata"]["name"]
    api.patch_namespaced_custom_object(
        GROUP, VERSION, shared, "kafkausers", user, {"spec": {"quotas": {"producerByteRate": 1}}}
    )
    kafka = naming.dedicated_kafka(dedicated.public_id)[1]
    api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "kafkas",
        kafka,
        {"spec": {"kafka": {"config": {"auto.create.topics.enable": "true"}}}},
    )
    dedicated_user = api.list_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "kafkausers",
        label_selector="app.kubernetes.io/managed-by=sluice",
    )["items"][0]["metadata"]["name"]
    api.delete_namespaced_custom_object(GROUP, VERSION, namespace, "kafkausers", dedicated_user)
    core = client.CoreV1Api(kube.api_client())
    config_map = (
        core.list_namespaced_config_map(
            namespace, label_selector="app.kubernetes.io/managed-by=sluice"
        )
        .items[0]
        .metadata.name
    )
    core.delete_namespaced_config_map(config_map, namespace)

    lister = lister_for(dataplane)
    with counted(lister) as sent:
        result = resynced(dataplane)
    assert sorted(result.repaired) == sorted(
        [
            ("KafkaTopic", shared, topic),
            ("KafkaUser", shared, user),
            ("Kafka", namespace, kafka),
            ("KafkaUser", namespace, dedicated_user),
            ("ConfigMap", namespace, config_map),
        ]
    )
    assert result.pruned == []
    assert len(writes(sent)) <= len(result.repaired)
    with tenant_scope(serverless.organization):
        wanted = {key_of(m): m for m in render(reconciler.build_spec(serverless))}
    listed = api.get_namespaced_custom_object(GROUP, VERSION, shared, "kafkatopics", topic)
    assert (
        listed["spec"]["partitions"] == wanted[("KafkaTopic", shared, topic)]["spec"]["partitions"]
    )
    listed = api.get_namespaced_custom_object(GROUP, VERSION, shared, "kafkausers", user)
    assert resync.contains(wanted[("KafkaUser", shared, user)]["spec"], listed["spec"])
    listed = api.get_namespaced_custom_object(GROUP, VERSION, namespace, "kafkas", kafka)
    assert listed["spec"]["kafka"]["config"]["auto.create.topics.enable"] is False
    core.read_namespaced_config_map(config_map, namespace)
    settled(dataplane)


def kafka_topic(name: str, labels: dict) -> dict:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "KafkaTopic",
        "metadata": {"name": name, "labels": labels},
        "spec": {"partitions": 1, "replicas": 1},
    }


def sluice_labels(cluster_id: str) -> dict:
    return {
        naming.MANAGED_BY_LABEL: naming.MANAGED_BY,
        naming.CLUSTER_LABEL: cluster_id,
        naming.ORGANIZATION_LABEL: "org_0000000000000000",
    }


@pytest.mark.kube
def test_only_labelled_objects_no_cluster_wants_are_deleted(kube, dataplane, fleet, monkeypatch):
    serverless, _ = fleet
    shared = dataplane.shared_kafka_namespace
    api = custom(kube)
    core = client.CoreV1Api(kube.api_client())

    def create(name: str, labels: dict) -> None:
        api.create_namespaced_custom_object(
            GROUP, VERSION, shared, "kafkatopics", kafka_topic(name, labels)
        )

    # Sluice's label, for a topic the cluster no longer has, and for a cluster that is gone.
    create("orphan-of-a-live-cluster", sluice_labels(serverless.public_id))
    gone = f"kc_{uuid.uuid4().hex[:16]}"
    create("stray-of-no-cluster", sluice_labels(gone))
    # Not Sluice's: Strimzi copies every label but managed-by; and an object with none.
    create("strimzi-made", {naming.CLUSTER_LABEL: serverless.public_id})
    core.create_namespaced_secret(
        shared,
        client.V1Secret(metadata=client.V1ObjectMeta(name="unlabelled"), string_data={"k": "v"}),
    )
    monkeypatch.setattr(resync, "PRUNE_MARGIN", timedelta(0))
    time.sleep(1.1)  # creation times are in seconds: the objects are older than the reading

    result = resynced(dataplane)
    assert sorted(result.pruned) == [
        ("KafkaTopic", shared, "orphan-of-a-live-cluster"),
        ("KafkaTopic", shared, "stray-of-no-cluster"),
    ]
    assert result.repaired == []
    wait_for(
        lambda: (
            not {"orphan-of-a-live-cluster", "stray-of-no-cluster"}
            & {
                t["metadata"]["name"]
                for t in api.list_namespaced_custom_object(GROUP, VERSION, shared, "kafkatopics")[
                    "items"
                ]
            }
        ),
        timeout=30,
        what="the topic operator's finalizer to let the orphans go",
    )
    api.get_namespaced_custom_object(GROUP, VERSION, shared, "kafkatopics", "strimzi-made")
    core.read_namespaced_secret("unlabelled", shared)


@pytest.mark.kube
def test_a_stray_younger_than_the_reading_is_kept(kube, dataplane, fleet):
    """What a pass finds of a cluster it did not read may be a newer cluster's whose row the
    recheck cannot see (another cell's database view, a clock ahead): kept while young."""
    shared = dataplane.shared_kafka_namespace
    custom(kube).create_namespaced_custom_object(
        GROUP,
        VERSION,
        shared,
        "kafkatopics",
        kafka_topic("young-stray", sluice_labels("kc_young0000000000")),
    )
    assert resynced(dataplane).pruned == []


@pytest.mark.kube
def test_a_cluster_created_between_the_reading_and_the_listing_is_not_pruned(
    kube, dataplane, fleet, monkeypatch
):
    monkeypatch.setattr(resync, "PRUNE_MARGIN", timedelta(0))  # the recheck alone protects it
    real_inventory = KubernetesLister.inventory
    created: list[Cluster] = []

    def created_meanwhile(self, dedicated):
        cluster = with_topic_and_credential(new_cluster("serverless")[0])
        created.append(cluster)
        time.sleep(1.1)  # its objects are older than the reading by creation time too
        return real_inventory(self, dedicated)

    monkeypatch.setattr(KubernetesLister, "inventory", created_meanwhile)
    result = resynced(dataplane)
    (cluster,) = created
    assert result.pruned == []
    shared = dataplane.shared_kafka_namespace
    assert len(listed_keys(kube, cluster.public_id, shared)) == 4  # its topic, user, 2 of Sluice's


@pytest.mark.kube
def test_a_change_made_during_the_pass_is_not_undone(kube, dataplane, fleet, monkeypatch):
    """A topic deleted and one added after the pass read the database: the pass's writes for
    that cluster stop (its generation moved on), so nothing of the change is undone."""
    serverless, _ = fleet
    shared = dataplane.shared_kafka_namespace
    real_inventory = KubernetesLister.inventory

    def changed_meanwhile(self, dedicated):
        with tenant_scope(serverless.organization):
            services.topic_create(cluster=serverless, actor=ACTOR, name="late", partitions=1)
        converge(serverless)
        return real_inventory(self, dedicated)

    monkeypatch.setattr(KubernetesLister, "inventory", changed_meanwhile)
    result = resynced(dataplane)
    assert result.pruned == []
    assert result.skipped == 1
    names = {
        name
        for kind, name in listed_keys(kube, serverless.public_id, shared)
        if kind == "KafkaTopic"
    }
    assert len(names) == 2  # orders and late


@pytest.mark.kube
def test_status_from_the_lists_moves_a_cluster_to_ready(kube, dataplane):
    cluster, operation = new_cluster("serverless")
    driver = lister_for(dataplane).driver
    with tenant_scope(cluster.organization):
        driver.apply(reconciler.build_spec(cluster), prune=False)  # applied, nothing recorded
    assert Cluster.unscoped_all_tenants.get(pk=cluster.pk).state == "requested"

    def ready() -> bool:
        resynced(dataplane)
        return Cluster.unscoped_all_tenants.get(pk=cluster.pk).state == "ready"

    wait_for(ready, timeout=30, what="the resync to record the cluster ready")
    cluster = Cluster.unscoped_all_tenants.get(pk=cluster.pk)
    assert cluster.observed_generation == cluster.generation
    assert cluster.bootstrap_servers.endswith(":9092")
    with tenant_scope(cluster.organization):
        assert Operation.objects.get(pk=operation.pk).state == "succeeded"
    assert resynced(dataplane).recorded == 0  # unchanged: not written again


@pytest.mark.kube
def test_a_cluster_a_run_holds_is_left_to_it(kube, dataplane, fleet):
    serverless, _ = fleet
    shared = dataplane.shared_kafka_namespace
    name = next(n for k, n in listed_keys(kube, serverless.public_id, shared) if k == "KafkaTopic")
    custom(kube).delete_namespaced_custom_object(GROUP, VERSION, shared, "kafkatopics", name)
    with reconciler.lease_held(serverless.pk) as lease:
        assert lease is not None
        result = resynced(dataplane)
    assert (result.repaired, result.clusters) == ([], 1)  # only the dedicated one compared
    wait_for(
        lambda: resynced(dataplane).repaired == [("KafkaTopic", shared, name)],
        timeout=30,
        what="the repair",
    )


def test_the_simulated_data_plane_resyncs_too(settings):
    settings.SLUICE_DATAPLANE_DRIVER = "simulated"
    settings.SLUICE_SIMULATED_SERVERLESS_READY_SECONDS = 0
    cluster, _ = make_cluster(make_org(owner=UserFactory(), name="Simulated"))
    cell = cluster.cell
    first = resync.resync_cell(cell)  # nothing there yet: everything is missing
    assert (
        len(first.repaired)
        == SimulatedObject.objects.filter(cluster_public_id=cluster.public_id).count()
        > 0
    )
    SimulatedObject.objects.create(
        cluster_public_id="kc_gone000000000000",
        kind="KafkaTopic",
        namespace=cell.shared_kafka_namespace,
        name="stray",
        manifest=kafka_topic("stray", sluice_labels("kc_gone000000000000"))
        | {
            "metadata": {
                "name": "stray",
                "namespace": cell.shared_kafka_namespace,
                "labels": sluice_labels("kc_gone000000000000"),
            }
        },
        applied_generation=1,
        ready_at=cluster.created_at,
    )
    second = resync.resync_cell(cell)
    assert second.repaired == []
    assert second.pruned == [("KafkaTopic", cell.shared_kafka_namespace, "stray")]
    assert second.recorded == 1
    assert Cluster.unscoped_all_tenants.get(pk=cluster.pk).state == "ready"
    third = resync.resync_cell(cell)
    assert (third.repaired, third.pruned, third.recorded) == ([], [], 0)


@pytest.mark.kube
def test_the_resync_runs_as_sluices_account_and_nothing_is_refused(
    kube,
    strimzi_emulator,
    sluice_account,  # noqa: F811 - the imported fixture
    settings,
    monkeypatch,
):
    """Under the least-privilege role of deploy/dataplane/ (no list across namespaces): the
    listing, the repairs and the prune, with no request refused in the audit log."""
    settings.SLUICE_DATAPLANE_DRIVER = "kubernetes"
    shared = f"sluice-shared-{uuid.uuid4().hex[:8]}"
    create_shared_kafka(kube.api_client(), shared)
    install_shared_role(kube, shared)
    cell = cell_as_account(kube, sluice_account, shared)
    since = kube.audit_offset()
    serverless = with_topic_and_credential(new_cluster("serverless")[0])
    dedicated = with_topic_and_credential(new_cluster("dedicated", capacity_units=1)[0])
    assert serverless.state == dedicated.state == "ready"
    settled(cell)

    api = custom(kube)
    namespace = naming.dedicated_namespace(dedicated.public_id)
    topic = next(n for k, n in listed_keys(kube, serverless.public_id, shared) if k == "KafkaTopic")
    api.patch_namespaced_custom_object(
        GROUP, VERSION, shared, "kafkatopics", topic, {"spec": {"partitions": 9}}
    )
    user = next(n for k, n in listed_keys(kube, dedicated.public_id, namespace) if k == "KafkaUser")
    api.delete_namespaced_custom_object(GROUP, VERSION, namespace, "kafkausers", user)
    api.create_namespaced_custom_object(
        GROUP, VERSION, shared, "kafkatopics", kafka_topic("stray", sluice_labels("kc_gone0"))
    )
    monkeypatch.setattr(resync, "PRUNE_MARGIN", timedelta(0))
    time.sleep(1.1)
    result = resynced(cell)
    assert sorted(result.repaired) == [
        ("KafkaTopic", shared, topic),
        ("KafkaUser", namespace, user),
    ]
    assert result.pruned == [("KafkaTopic", shared, "stray")]
    settled(cell)

    events = kube.audit_events(since=since, user=ACCOUNT_USER)
    assert refused(events) == []
    lists = {e["objectRef"]["resource"] for e in events if e["verb"] == "list"}
    assert {"kafkatopics", "kafkausers", "secrets", "kafkas", "configmaps"} <= lists


def test_one_pass_per_cell_at_a_time(settings):
    settings.SLUICE_DATAPLANE_DRIVER = "simulated"
    cluster, _ = make_cluster(make_org(owner=UserFactory(), name="Coalesced"))
    held, release = threading.Event(), threading.Event()

    def another_pass() -> None:
        try:
            with resync._cell_lock(cluster.cell) as got:
                assert got
                held.set()
                release.wait(10)
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=another_pass)
    thread.start()
    assert held.wait(10)
    assert resync.resync_cell(cluster.cell).busy is True
    assert not SimulatedObject.objects.exists()
    release.set()
    thread.join()
    assert resync.resync_cell(cluster.cell).busy is False
    assert SimulatedObject.objects.filter(cluster_public_id=cluster.public_id).exists()


def test_beats_sweep_resyncs_each_cell_and_runs_only_clusters_with_work_outstanding(settings):
    """An idle converged cluster whose objects vanished is repaired by its cell's pass, not by a
    run of its own; a cluster with a change not converged gets its run."""
    settings.SLUICE_DATAPLANE_DRIVER = "simulated"
    settings.SLUICE_SIMULATED_SERVERLESS_READY_SECONDS = 0
    idle, _ = make_cluster(make_org(owner=UserFactory(), name="Idle"))
    assert reconciler.reconcile(idle.pk) == reconciler.Outcome.CONVERGED
    SimulatedObject.objects.filter(cluster_public_id=idle.public_id).delete()
    changed, _ = make_cluster(make_org(owner=UserFactory(), name="Changed"))
    runs = []
    real = reconciler.reconcile

    def counted_run(cluster_pk, **kwargs):
        runs.append(cluster_pk)
        return real(cluster_pk, **kwargs)

    with mock.patch.object(reconciler, "reconcile", counted_run):
        reconcile_fleet()  # tasks run inline in this process
    assert runs == [changed.pk]
    assert SimulatedObject.objects.filter(cluster_public_id=idle.public_id).exists()
    assert Cluster.unscoped_all_tenants.get(pk=changed.pk).state == "ready"
