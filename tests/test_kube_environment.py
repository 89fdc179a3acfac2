"""The Kubernetes test environment is the real thing: behaviour a hand-written imitation of
the API server would not have."""

import base64
import json
import uuid

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.support.kubeenv import versions
from tests.support.services import wait_for
from tests.support.strimzi_emulator import GROUP, VERSION

pytestmark = pytest.mark.kube


def new_namespace(kube, prefix: str = "t") -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(kube.api_client()).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
    )
    return name


def kafka(name: str, *, replicas_field=None) -> dict:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Kafka",
        "metadata": {"name": name},
        "spec": {
            "kafka": {
                "version": "4.1.0",
                "listeners": [
                    {
                        "name": "scram",
                        "port": 9092,
                        "type": "internal",
                        "tls": False,
                        "authentication": {"type": "scram-sha-512"},
                    },
                ],
                "authorization": {"type": "simple"},
            },
        },
    }
    if replicas_field is not None:
        body["spec"]["kafka"]["replicas"] = replicas_field
    return body


def node_pool(name: str, cluster: str, replicas: int) -> dict:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "KafkaNodePool",
        "metadata": {"name": name, "labels": {"strimzi.io/cluster": cluster}},
        "spec": {
            "replicas": replicas,
            "roles": ["controller", "broker"],
            "storage": {"type": "persistent-claim", "size": "10Gi"},
        },
    }


def custom(kube):
    return client.CustomObjectsApi(kube.api_client())


def test_version_is_the_pinned_release(kube):
    info = client.VersionApi(kube.api_client()).get_code()
    assert info.git_version == versions()["KUBERNETES_VERSION"]


def test_the_crd_schema_rejects_an_invalid_kafka(kube):
    namespace = new_namespace(kube)
    invalid = kafka("broken")
    invalid["spec"]["kafka"]["listeners"][0]["port"] = "not-a-port"
    del invalid["spec"]["kafka"]["listeners"][0]["type"]
    with pytest.raises(ApiException) as raised:
        custom(kube).create_namespaced_custom_object(GROUP, VERSION, namespace, "kafkas", invalid)
    assert raised.value.status == 422
    details = json.loads(raised.value.body)
    assert details["reason"] == "Invalid"
    fields = {cause["field"] for cause in details["details"]["causes"]}
    assert "spec.kafka.listeners[0].port" in fields
    assert "spec.kafka.listeners[0].type" in fields


def test_server_side_apply_reports_a_field_manager_conflict(kube):
    namespace = new_namespace(kube)
    configmaps = kube.dynamic_client().resources.get(api_version="v1", kind="ConfigMap")
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "owned", "namespace": namespace},
        "data": {"retention": "7d"},
    }
    configmaps.server_side_apply(body=body, field_manager="sluice")
    body["data"]["retention"] = "30d"
    with pytest.raises(ApiException) as raised:
        configmaps.server_side_apply(body=body, field_manager="someone-else")
    assert raised.value.status == 409
    causes = json.loads(raised.value.body)["details"]["causes"]
    assert causes == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "sluice"',
            "field": ".data.retention",
        }
    ]
    forced = configmaps.server_side_apply(
        body=body, field_manager="someone-else", force_conflicts=True
    )
    assert forced.data.retention == "30d"


def test_deleting_a_namespace_finishes(kube):
    core = client.CoreV1Api(kube.api_client())
    namespace = new_namespace(kube)
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c"), data={"a": "b"})
    )
    custom(kube).create_namespaced_custom_object(GROUP, VERSION, namespace, "kafkas", kafka("k"))
    core.delete_namespace(namespace)
    assert core.read_namespace(namespace).status.phase == "Terminating"

    def gone() -> bool:
        try:
            core.read_namespace(namespace)
        except ApiException as error:
            return error.status == 404
        return False

    wait_for(gone, timeout=60, what="the namespace controller to finish the deletion")


def test_a_resource_quota_gets_its_usage_filled_in(kube):
    core = client.CoreV1Api(kube.api_client())
    namespace = new_namespace(kube)
    core.create_namespaced_resource_quota(
        namespace,
        client.V1ResourceQuota(
            metadata=client.V1ObjectMeta(name="quota"),
            spec=client.V1ResourceQuotaSpec(hard={"configmaps": "5", "secrets": "3"}),
        ),
    )
    for index in range(2):
        core.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"c{index}"))
        )

    def used() -> dict:
        return core.read_namespaced_resource_quota("quota", namespace).status.used or {}

    wait_for(lambda: used().get("configmaps") == "2", timeout=60, what="quota usage")
    assert used()["secrets"] == "0"
    for index in range(3):
        core.create_namespaced_secret(
            namespace, client.V1Secret(metadata=client.V1ObjectMeta(name=f"s{index}"))
        )
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_secret(
            namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="s3"))
        )
    assert raised.value.status == 403
    assert "exceeded quota" in raised.value.body


def test_rbac_applies_to_the_limited_token(kube):
    namespace = new_namespace(kube)
    limited = client.CustomObjectsApi(kube.api_client(limited=True))
    with pytest.raises(ApiException) as raised:
        limited.list_namespaced_custom_object(GROUP, VERSION, namespace, "kafkas")
    assert raised.value.status == 403
    rbac = client.RbacAuthorizationV1Api(kube.api_client())
    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="kafka-reader"),
            rules=[
                client.V1PolicyRule(api_groups=[GROUP], resources=["kafkas"], verbs=["list", "get"])
            ],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="kafka-reader"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="kafka-reader"
            ),
            subjects=[
                client.RbacV1Subject(
                    kind="User", name="sluice-test-limited", api_group="rbac.authorization.k8s.io"
                )
            ],
        ),
    )
    wait_for(
        lambda: (
            limited.list_namespaced_custom_object(GROUP, VERSION, namespace, "kafkas") is not None
        ),
        timeout=10,
        what="the role binding to take effect",
    )
    with pytest.raises(ApiException) as raised:
        limited.list_namespaced_custom_object(GROUP, VERSION, namespace, "kafkausers")
    assert raised.value.status == 403


# The operator emulator ------------------------------------------------------------------------


def wait_for_status(kube, namespace: str, plural: str, name: str, predicate, what: str) -> dict:
    found = {}

    def check() -> bool:
        found.update(
            custom(kube).get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
        )
        return predicate(found.get("status") or {})

    wait_for(check, timeout=30, what=what)
    return found["status"]


def ready(status: dict) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or []
    )


def test_the_emulator_turns_a_kafka_ready_with_listeners_and_node_ids(kube, strimzi_emulator):
    namespace = new_namespace(kube)
    api = custom(kube)
    api.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "kafkanodepools", node_pool("dual", "events", 3)
    )
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, "kafkas", kafka("events"))

    status = wait_for_status(kube, namespace, "kafkas", "events", ready, "the Kafka to be Ready")
    assert status["observedGeneration"] == 1
    assert status["listeners"] == [
        {
            "name": "scram",
            "addresses": [{"host": f"events-kafka-bootstrap.{namespace}.svc", "port": 9092}],
            "bootstrapServers": f"events-kafka-bootstrap.{namespace}.svc:9092",
        }
    ]
    assert status["kafkaVersion"] == "4.1.0"
    assert status["kafkaNodePools"] == [{"name": "dual"}]
    assert len(status["clusterId"]) == 22
    pool = wait_for_status(
        kube, namespace, "kafkanodepools", "dual", lambda s: "nodeIds" in s, "node ids"
    )
    assert pool["nodeIds"] == [0, 1, 2]
    assert pool["clusterId"] == status["clusterId"]
    assert pool["roles"] == ["controller", "broker"]


def test_the_emulator_can_fail_and_recover(kube, strimzi_emulator):
    namespace = new_namespace(kube)
    strimzi_emulator.set_mode("not-ready", reason="InsufficientResources", message="No room")
    custom(kube).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "kafkas", kafka("events")
    )
    status = wait_for_status(
        kube,
        namespace,
        "kafkas",
        "events",
        lambda s: bool(s.get("conditions")),
        "a NotReady status",
    )
    assert status["conditions"][0]["type"] == "NotReady"
    assert status["conditions"][0]["status"] == "True"
    assert status["conditions"][0]["reason"] == "InsufficientResources"
    assert status["conditions"][0]["message"] == "No room"
    assert "listeners" not in status
    strimzi_emulator.set_mode("ready")
    wait_for_status(kube, namespace, "kafkas", "events", ready, "recovery")


def test_never_ready_leaves_no_status(kube, strimzi_emulator):
    namespace = new_namespace(kube)
    body = kafka("silent")
    body["metadata"]["annotations"] = {"sluice.test/emulate": "never"}
    api = custom(kube)
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, "kafkas", body)
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, "kafkas", kafka("loud"))
    wait_for_status(kube, namespace, "kafkas", "loud", ready, "the other Kafka")
    assert "status" not in api.get_namespaced_custom_object(
        GROUP, VERSION, namespace, "kafkas", "silent"
    )


def test_the_emulator_makes_scram_users_and_topics(kube, strimzi_emulator):
    namespace = new_namespace(kube)
    api, core = custom(kube), client.CoreV1Api(kube.api_client())
    api.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "kafkausers",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "KafkaUser",
            "metadata": {"name": "app", "labels": {"strimzi.io/cluster": "events"}},
            "spec": {"authentication": {"type": "scram-sha-512"}},
        },
    )
    api.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "kafkatopics",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "KafkaTopic",
            "metadata": {"name": "orders-v1", "labels": {"strimzi.io/cluster": "events"}},
            "spec": {"topicName": "orders.v1", "partitions": 3, "replicas": 3},
        },
    )
    user = wait_for_status(kube, namespace, "kafkausers", "app", ready, "the user")
    assert (user["username"], user["secret"]) == ("app", "app")
    secret = core.read_namespaced_secret("app", namespace)
    password = base64.b64decode(secret.data["password"]).decode()
    assert len(password) == 32
    jaas = base64.b64decode(secret.data["sasl.jaas.config"]).decode()
    assert jaas == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="app" password="{password}";'
    )
    topic = wait_for_status(kube, namespace, "kafkatopics", "orders-v1", ready, "the topic")
    assert topic["topicName"] == "orders.v1"
    assert len(topic["topicId"]) == 22

    # Deleting the user lets the garbage collector remove its Secret (owner reference);
    # deleting the topic waits for the topic operator's finalizer.
    api.delete_namespaced_custom_object(GROUP, VERSION, namespace, "kafkausers", "app")
    api.delete_namespaced_custom_object(GROUP, VERSION, namespace, "kafkatopics", "orders-v1")

    def secret_gone() -> bool:
        try:
            core.read_namespaced_secret("app", namespace)
        except ApiException as error:
            return error.status == 404
        return False

    def topic_gone() -> bool:
        try:
            api.get_namespaced_custom_object(GROUP, VERSION, namespace, "kafkatopics", "orders-v1")
        except ApiException as error:
            return error.status == 404
        return False

    wait_for(secret_gone, timeout=60, what="the garbage collector to delete the user's Secret")
    wait_for(topic_gone, timeout=30, what="the topic's finalizer to be removed")


def test_what_a_test_creates_is_deleted_after_it(kube_environment):
    from tests.support.kubeenv import delete_test_leftovers, namespace_names

    before = namespace_names(kube_environment)
    leftover = new_namespace(kube_environment, "leftover")
    rbac = client.RbacAuthorizationV1Api(kube_environment.api_client())
    rbac.create_cluster_role(
        client.V1ClusterRole(
            metadata=client.V1ObjectMeta(name=leftover, labels={"sluice.test/owned": "true"})
        )
    )
    doomed = delete_test_leftovers(
        kube_environment, keep_namespaces=before, owned_label="sluice.test/owned", wait=True
    )
    assert leftover in doomed
    assert leftover not in namespace_names(kube_environment)
    assert not rbac.list_cluster_role(label_selector="sluice.test/owned=true").items


def test_the_emulator_waits_its_delay_before_answering(kube, strimzi_emulator):
    import time

    namespace = new_namespace(kube)
    strimzi_emulator.delay = 1.5
    created = time.monotonic()
    custom(kube).create_namespaced_custom_object(GROUP, VERSION, namespace, "kafkas", kafka("slow"))
    time.sleep(0.5)
    body = custom(kube).get_namespaced_custom_object(GROUP, VERSION, namespace, "kafkas", "slow")
    assert "status" not in body
    wait_for_status(kube, namespace, "kafkas", "slow", ready, "the delayed Ready")
    assert time.monotonic() - created >= 1.5
