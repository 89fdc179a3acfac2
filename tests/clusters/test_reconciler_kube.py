"""The reconciler and the Kubernetes driver, against the real API server with the Strimzi CRDs
and the operator emulator."""

from datetime import timedelta

import pytest
from django.utils import timezone
from kubernetes import client

from clusters import naming, reconciler, rendering, services
from clusters.drivers.kubernetes import KubernetesDriver
from clusters.models import Cluster, Operation
from clusters.reconciler import Outcome
from tenants.audit import Actor
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, make_org
from tests.support.services import wait_for
from tests.support.strimzi_emulator import GROUP, OVERRIDE_ANNOTATION, VERSION

pytestmark = [pytest.mark.kube, pytest.mark.django_db]
ACTOR = Actor(system="tests")


def converge(cluster: Cluster, timeout: float = 30) -> Cluster:
    outcomes = []

    def done() -> bool:
        outcomes.append(reconciler.reconcile(cluster.pk))
        return outcomes[-1] in (Outcome.CONVERGED, Outcome.FAILED)

    wait_for(done, timeout=timeout, what=f"{cluster.public_id} to converge ({outcomes[-3:]})")
    return Cluster.unscoped_all_tenants.get(pk=cluster.pk)


def sluice_objects(cluster_id: str) -> set[tuple[str, str]]:
    """The KafkaUsers and password Secrets of Sluice's own principals of the cluster, which
    every cluster has (consumer groups are read and reset through them)."""
    found = set()
    for role in ("observer", "offsets"):
        found.add(("KafkaUser", naming.sluice_username(cluster_id, role)))
        found.add(("Secret", naming.sluice_password_secret_name(cluster_id, role)))
    return found


def tenant_objects(kube, cluster_id: str) -> list[tuple[str, str]]:
    """(kind, name) of what the API server holds for the cluster, Sluice's principals aside."""
    return [
        (kind, name)
        for kind, _, name in labelled(kube, cluster_id)
        if (kind, name) not in sluice_objects(cluster_id)
    ]


def labelled(kube, cluster_id: str) -> list[tuple[str, str, str]]:
    """Every object in the API server carrying the cluster's label."""
    dynamic = kube.dynamic_client()
    found = []
    for api_version, kind in [
        ("v1", "Namespace"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
        ("v1", "Secret"),
        ("v1", "ConfigMap"),
        ("v1", "ResourceQuota"),
        ("v1", "LimitRange"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
        (f"{GROUP}/{VERSION}", "Kafka"),
        (f"{GROUP}/{VERSION}", "KafkaNodePool"),
        (f"{GROUP}/{VERSION}", "KafkaTopic"),
        (f"{GROUP}/{VERSION}", "KafkaUser"),
    ]:
        items = (
            dynamic.resources.get(api_version=api_version, kind=kind)
            .get(label_selector=f"sluice.io/cluster={cluster_id}")
            .items
        )
        found += [(kind, item.metadata.namespace or "", item.metadata.name) for item in items]
    return sorted(found)


def new_cluster(tier_slug: str = "dedicated", **fields) -> tuple[Cluster, Operation]:
    organization = make_org(owner=UserFactory(), name="Kube Corp")
    with tenant_scope(organization):
        return services.cluster_create(
            organization=organization,
            actor=ACTOR,
            name="events",
            tier_slug=tier_slug,
            region="eu-west-1",
            **fields,
        )


def test_a_dedicated_cluster_gets_its_namespace_policies_quota_and_kafka(kube, dataplane):
    cluster, operation = new_cluster(capacity_units=2)
    cluster = converge(cluster)
    assert cluster.state == "ready"
    namespace = f"sl-{cluster.public_id.replace('_', '-')}"
    # Clients are given the external TLS listener (the load balancer), not the in-cluster one.
    assert cluster.bootstrap_servers.endswith(f".{namespace}.svc:9094")
    assert cluster.bootstrap_tls is True
    kinds = {kind for kind, _, _ in labelled(kube, cluster.public_id)}
    assert {"Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "ConfigMap"} <= kinds
    assert {"Kafka", "KafkaNodePool"} <= kinds
    pools = client.CustomObjectsApi(kube.api_client()).list_namespaced_custom_object(
        GROUP, VERSION, namespace, "kafkanodepools"
    )["items"]
    assert sum(pool["spec"]["replicas"] for pool in pools if "broker" in pool["spec"]["roles"]) == 3
    with tenant_scope(cluster.organization):
        assert Operation.objects.get(pk=operation.pk).state == "succeeded"


def test_resize_and_type_change_converge(kube, dataplane):
    cluster, _ = new_cluster("serverless")
    cluster = converge(cluster)
    assert cluster.state == "ready"
    # A serverless cluster is metadata only: here, Sluice's own principals of it.
    assert {(kind, name) for kind, _, name in labelled(kube, cluster.public_id)} == (
        sluice_objects(cluster.public_id)
    )
    # The cell's shared Kafka here has only its plain SCRAM listener: clients are told so.
    assert (cluster.bootstrap_servers.endswith(":9092"), cluster.bootstrap_tls) == (True, False)

    with tenant_scope(cluster.organization):
        cluster, _ = services.cluster_update(
            cluster=cluster, actor=ACTOR, tier_slug="dedicated", capacity_units=1
        )
    cluster = converge(cluster)
    assert (cluster.state, cluster.observed_generation) == ("ready", 2)
    assert (cluster.bootstrap_servers.endswith(":9094"), cluster.bootstrap_tls) == (True, True)
    assert "Kafka" in {kind for kind, _, _ in labelled(kube, cluster.public_id)}

    with tenant_scope(cluster.organization):
        cluster, _ = services.cluster_update(cluster=cluster, actor=ACTOR, capacity_units=4)
    cluster = converge(cluster)
    assert (cluster.state, cluster.observed_generation) == ("ready", 3)
    namespace = f"sl-{cluster.public_id.replace('_', '-')}"
    pools = client.CustomObjectsApi(kube.api_client()).list_namespaced_custom_object(
        GROUP, VERSION, namespace, "kafkanodepools"
    )["items"]
    assert sum(p["spec"]["replicas"] for p in pools if "broker" in p["spec"]["roles"]) == 4


def test_delete_leaves_nothing_labelled_with_the_cluster(kube, dataplane):
    cluster, _ = new_cluster()
    cluster = converge(cluster)
    assert labelled(kube, cluster.public_id)
    with tenant_scope(cluster.organization):
        services.cluster_delete(cluster=cluster, actor=ACTOR)
    cluster = converge(cluster, timeout=90)  # the namespace controller takes its 5 s
    assert cluster.state == "deleted"
    assert labelled(kube, cluster.public_id) == []


def test_an_operator_failure_surfaces_and_a_retry_recovers(kube, dataplane, strimzi_emulator):
    strimzi_emulator.set_mode("not-ready", reason="InsufficientResources", message="No node fits")
    cluster, operation = new_cluster()
    cluster = converge(cluster)
    assert cluster.state == "failed"
    assert (cluster.failure_reason, cluster.failure_message) == (
        "InsufficientResources",
        "No node fits",
    )
    with tenant_scope(cluster.organization):
        failed = Operation.objects.get(pk=operation.pk)
        assert (failed.state, failed.error_code) == ("failed", "InsufficientResources")
        strimzi_emulator.set_mode("ready")
        retry = services.cluster_retry(cluster=cluster, actor=ACTOR)
    cluster = converge(cluster)
    assert cluster.state == "ready"
    with tenant_scope(cluster.organization):
        assert Operation.objects.get(pk=retry.pk).state == "succeeded"


class InterruptingResource:
    """A resource whose server-side applies stop working after a given number of writes."""

    def __init__(self, resource, budget: dict) -> None:
        self._resource = resource
        self._budget = budget

    def server_side_apply(self, *args, **kwargs):
        if self._budget["left"] <= 0:
            raise ConnectionError("the control plane died mid-reconcile")
        self._budget["left"] -= 1
        return self._resource.server_side_apply(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._resource, name)


def test_an_interrupted_reconcile_converges_with_no_duplicates(kube, dataplane, monkeypatch):
    """Stop a run after each write in turn; the next run finishes the job, duplicating nothing."""
    cluster, _ = new_cluster()
    with tenant_scope(cluster.organization):
        manifests = rendering.render(reconciler.build_spec(cluster))
    real_resource = KubernetesDriver._resource
    for writes in range(1, len(manifests)):
        budget = {"left": writes}
        monkeypatch.setattr(
            KubernetesDriver,
            "_resource",
            lambda self, api_version, kind, budget=budget: InterruptingResource(
                real_resource(self, api_version, kind), budget
            ),
        )
        with pytest.raises(ConnectionError):
            reconciler.reconcile(cluster.pk)
        assert len(labelled(kube, cluster.public_id)) == writes
    monkeypatch.setattr(KubernetesDriver, "_resource", real_resource)
    cluster = converge(cluster)
    assert cluster.state == "ready"
    objects = labelled(kube, cluster.public_id)
    assert len(objects) == len(set(objects)) == len(manifests)


def test_a_serverless_cluster_gets_working_credentials_and_prefixed_topics(kube, dataplane):
    import base64

    cluster, _ = new_cluster("serverless")
    with tenant_scope(cluster.organization):
        services.topic_create(cluster=cluster, actor=ACTOR, name="orders", partitions=3)
        credential, password, _ = services.credential_create(
            cluster=cluster, actor=ACTOR, name="orders service"
        )
    cluster = converge(cluster)
    assert cluster.state == "ready"
    namespace = dataplane.shared_kafka_namespace
    api = client.CustomObjectsApi(kube.api_client())
    user = api.get_namespaced_custom_object(
        GROUP, VERSION, namespace, "kafkausers", credential.username
    )
    assert user["status"]["username"] == credential.username
    acl_names = {acl["resource"]["name"] for acl in user["spec"]["authorization"]["acls"]}
    assert acl_names == {f"{cluster.public_id}."}
    # The user operator's Secret carries the password the API showed the tenant.
    secret = client.CoreV1Api(kube.api_client()).read_namespaced_secret(
        user["status"]["secret"], namespace
    )
    assert base64.b64decode(secret.data["password"]).decode() == password
    topics = api.list_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "kafkatopics",
        label_selector=f"sluice.io/cluster={cluster.public_id}",
    )["items"]
    assert [t["status"]["topicName"] for t in topics] == [f"{cluster.public_id}.orders"]
    assert cluster.bootstrap_servers == f"shared-kafka-bootstrap.{namespace}.svc:9092"


def test_drift_is_repaired(kube, dataplane):
    cluster, _ = new_cluster()
    cluster = converge(cluster)
    namespace = f"sl-{cluster.public_id.replace('_', '-')}"
    networking = client.NetworkingV1Api(kube.api_client())
    policies = networking.list_namespaced_network_policy(namespace).items
    removed = policies[0].metadata.name
    networking.delete_namespaced_network_policy(removed, namespace)
    quota = client.CoreV1Api(kube.api_client()).list_namespaced_resource_quota(namespace).items[0]
    client.CoreV1Api(kube.api_client()).patch_namespaced_resource_quota(
        quota.metadata.name, namespace, {"spec": {"hard": {"pods": "1000"}}}
    )
    assert reconciler.reconcile(cluster.pk) == Outcome.CONVERGED
    names = {p.metadata.name for p in networking.list_namespaced_network_policy(namespace).items}
    assert removed in names
    repaired = client.CoreV1Api(kube.api_client()).read_namespaced_resource_quota(
        quota.metadata.name, namespace
    )
    assert repaired.spec.hard["pods"] == quota.spec.hard["pods"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.celery_worker
def test_an_api_server_outage_is_retried_until_it_converges(kube, dataplane, start_celery_worker):
    import os
    import signal
    import time

    worker = start_celery_worker(
        SLUICE_DATAPLANE_DRIVER="kubernetes", SLUICE_KUBERNETES_TIMEOUT_SECONDS="2"
    )
    apiserver = kube.processes["kube-apiserver"]
    os.kill(apiserver.pid, signal.SIGSTOP)  # the API server stops answering
    try:
        cluster, _ = new_cluster()  # its reconcile is queued to the worker on commit
        try:
            wait_for(
                lambda: "Retry in" in worker.log(),
                timeout=30,
                what="the worker to retry the reconcile",
            )
        except TimeoutError:
            raise AssertionError(worker.log()[-9000:]) from None
        time.sleep(3)
        assert Cluster.unscoped_all_tenants.get(pk=cluster.pk).state in (
            "requested",
            "provisioning",
        )
    finally:
        os.kill(apiserver.pid, signal.SIGCONT)
    wait_for(
        lambda: Cluster.unscoped_all_tenants.get(pk=cluster.pk).state == "ready",
        timeout=90,
        what=f"the cluster to converge after the outage (worker log: {worker.log_path})",
    )


def test_deleted_topics_and_credentials_are_pruned_from_the_data_plane(kube, dataplane):
    """A new generation may drop objects the last one rendered: the run that applies it
    deletes them (and a converged generation's runs do not look for leftovers at all)."""
    cluster, _ = new_cluster("serverless")
    with tenant_scope(cluster.organization):
        services.topic_create(cluster=cluster, actor=ACTOR, name="orders", partitions=1)
        services.topic_create(cluster=cluster, actor=ACTOR, name="audit", partitions=1)
        credential, _, _ = services.credential_create(cluster=cluster, actor=ACTOR, name="app")
    cluster = converge(cluster)
    kinds = [kind for kind, _ in tenant_objects(kube, cluster.public_id)]
    assert sorted(kinds) == ["KafkaTopic", "KafkaTopic", "KafkaUser", "Secret"]
    with tenant_scope(cluster.organization):
        topic = cluster.topics.get(name="audit")
        services.topic_delete(topic=topic, actor=ACTOR)
        services.credential_delete(credential=credential, actor=ACTOR)
    cluster = converge(cluster)
    assert cluster.observed_generation == cluster.generation

    def only_orders_left() -> bool:
        # The topic operator's finalizer keeps a deleted KafkaTopic until the emulator lets go.
        return tenant_objects(kube, cluster.public_id) == [
            ("KafkaTopic", rendering.resource_name(cluster.public_id) + ".orders")
        ]

    wait_for(only_orders_left, timeout=30, what="the deleted topic and credential to go")


def test_a_failure_fails_only_the_operations_the_failed_run_applied(
    kube, dataplane, strimzi_emulator
):
    """A run of generation 1 fails while generation 2 (a topic) waits for its own run: the
    topic's operation stays open instead of failing with what the data plane never saw."""
    strimzi_emulator.set_mode("not-ready", reason="InsufficientResources", message="No node fits")
    cluster, created = new_cluster()
    lease = reconciler._take_lease(cluster.pk, "")
    with tenant_scope(cluster.organization):
        applied = reconciler.build_spec(cluster)
        _, topic_operation = services.topic_create(
            cluster=cluster, actor=ACTOR, name="orders", partitions=1
        )
    outcomes = []

    def failed() -> bool:
        with tenant_scope(cluster.organization):
            outcomes.append(reconciler._converge(cluster, applied, lease))
        return outcomes[-1] == Outcome.FAILED

    wait_for(failed, timeout=30, what=f"generation 1 to fail ({outcomes[-3:]})")
    reconciler._release_lease(lease)
    with tenant_scope(cluster.organization):
        assert Operation.objects.get(pk=created.pk).state == "failed"
        assert Operation.objects.get(pk=topic_operation.pk).state == "pending"
        strimzi_emulator.set_mode("ready")
        services.cluster_retry(cluster=cluster, actor=ACTOR)
    converge(cluster)
    with tenant_scope(cluster.organization):
        assert Operation.objects.get(pk=topic_operation.pk).state == "succeeded"


def test_a_serverless_cluster_shows_its_own_conditions_and_the_cells_health_only(
    kube, dataplane, strimzi_emulator
):
    cluster, _ = new_cluster("serverless")
    with tenant_scope(cluster.organization):
        services.topic_create(cluster=cluster, actor=ACTOR, name="orders", partitions=1)
    cluster = converge(cluster)
    objects = {condition["object"] for condition in cluster.conditions}
    assert objects == {
        f"KafkaTopic/{rendering.resource_name(cluster.public_id)}.orders",
        "cell",
        *(f"{kind}/{name}" for kind, name in sluice_objects(cluster.public_id) if kind != "Secret"),
    }
    cell = next(c for c in cluster.conditions if c["object"] == "cell")
    assert (cell["type"], cell["status"]) == ("CellReady", "True")

    # The shared Kafka in trouble: its tenants learn that the cell cannot serve them, not the
    # platform's own reasons and messages.
    client.CustomObjectsApi(kube.api_client()).patch_namespaced_custom_object(
        GROUP,
        VERSION,
        dataplane.shared_kafka_namespace,
        "kafkas",
        "shared",
        {"metadata": {"annotations": {OVERRIDE_ANNOTATION: "not-ready:Creating:node-7 of b"}}},
    )
    wait_for(
        lambda: reconciler.reconcile(cluster.pk) == Outcome.PENDING,
        timeout=30,
        what="the tenant's cluster to see its cell not ready",
    )
    cluster = Cluster.unscoped_all_tenants.get(pk=cluster.pk)
    assert "node-7" not in str(cluster.conditions)
    assert "Kafka/shared" not in str(cluster.conditions)
    cell = next(c for c in cluster.conditions if c["object"] == "cell")
    assert (cell["type"], cell["status"], cell["reason"]) == (
        "CellReady",
        "False",
        "SharedKafkaUnavailable",
    )


def test_a_run_that_outlived_its_lease_prunes_nothing_from_the_api_server(kube, dataplane):
    cluster, _ = new_cluster("serverless")
    cluster = converge(cluster)
    # Run A reads the desired state of its time ("orders", not yet observed), then stalls.
    stale = reconciler._take_lease(cluster.pk, "")
    with tenant_scope(cluster.organization):
        services.topic_create(cluster=cluster, actor=ACTOR, name="orders", partitions=1)
        stale_cluster = Cluster.objects.get(pk=cluster.pk)
        stale_spec = reconciler.build_spec(stale_cluster)
        assert stale_cluster.observed_generation < stale_spec.generation  # it would prune
    # Its lease expires; run B applies a newer state with "payments" too.
    Cluster.unscoped_all_tenants.filter(pk=cluster.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    with tenant_scope(cluster.organization):
        services.topic_create(cluster=cluster, actor=ACTOR, name="payments", partitions=1)
    converge(cluster)
    topics = {name for kind, _, name in labelled(kube, cluster.public_id) if kind == "KafkaTopic"}
    payments = f"{rendering.resource_name(cluster.public_id)}.payments"
    assert payments in topics
    # A resumes: it would prune "payments"; fenced, it writes nothing.
    with tenant_scope(cluster.organization), pytest.raises(reconciler.LeaseLost):
        reconciler._converge(stale_cluster, stale_spec, stale)
    with pytest.raises(reconciler.LeaseLost):
        KubernetesDriver.for_cell(dataplane).delete(stale_spec, guard=stale.check)
    topics = {name for kind, _, name in labelled(kube, cluster.public_id) if kind == "KafkaTopic"}
    assert payments in topics
