"""clusters.rendering on its own: what a spec turns into, with no server involved."""

from __future__ import annotations

import copy
import dataclasses
import json
import re

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clusters import rendering
from clusters.naming import (
    kafka_name,
    kafka_topic_name,
    namespace_for,
    resource_name,
    topic_resource_name,
    user_resource_name,
)
from clusters.rendering import InvalidSpec, render
from clusters.specs import (
    ClusterSpec,
    ControlPlaneAccount,
    CredentialSpec,
    Kind,
    Limits,
    SharedKafka,
    Sizing,
    TopicSpec,
)
from tests.support.processes import REPO_ROOT

GIB = 1024**3
DAY_MS = 24 * 3600 * 1000
CLUSTER_ID = "kc_ab12cd34ef56gh78"
ORG_ID = "org_ab12cd34ef56gh78"
SHARED = SharedKafka(namespace="sl-cell-eu1", name="shared")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
STRIMZI_KINDS_WITH_CLUSTER_LABEL = {"KafkaTopic", "KafkaUser", "KafkaNodePool"}


# Specs ----------------------------------------------------------------------------------------


def limits(**overrides) -> Limits:
    values = {
        "ingress_bytes_per_second": 10 * 1024**2,
        "egress_bytes_per_second": 30 * 1024**2,
        "max_partitions": 100,
        "max_storage_bytes": 50 * GIB,
        "max_retention_ms": 3 * DAY_MS,
        "max_connections": 1000,
        "request_percentage": 25,
        "controller_mutation_rate": 5.0,
    }
    return Limits(**{**values, **overrides})


def credential(
    cluster_id: str = CLUSTER_ID, suffix: str = "app", credential_id: str | None = None, **kw
) -> CredentialSpec:
    credential_id = credential_id or f"cred_{suffix:a<16}"[:21]
    values = {
        "credential_id": credential_id,
        "username": f"{resource_name(cluster_id)}.{suffix}",
        "password_secret": f"{resource_name(credential_id)}-password",
        "password": f"pw-{suffix}-0123456789",
    }
    return CredentialSpec(**{**values, **kw})


def serverless_spec(cluster_id: str = CLUSTER_ID, **overrides) -> ClusterSpec:
    values = {
        "cluster_id": cluster_id,
        "organization_id": ORG_ID,
        "name": "payments",
        "kind": Kind.SERVERLESS,
        "tier": "serverless",
        "generation": 1,
        "kafka_version": "4.1.0",
        "limits": limits(),
        "sizing": None,
        "shared_kafka": SHARED,
        "topics": (
            TopicSpec("orders", partitions=6, replicas=3, config={"cleanup.policy": "delete"}),
            TopicSpec("Audit_Log", partitions=1, replicas=3),
        ),
        "credentials": (credential(cluster_id, "app"), credential(cluster_id, "reporting")),
    }
    return ClusterSpec(**{**values, **overrides})


def dedicated_spec(cluster_id: str = CLUSTER_ID, **overrides) -> ClusterSpec:
    values = {
        "kind": Kind.DEDICATED,
        "tier": "dedicated",
        "sizing": Sizing(
            brokers=3, cpu_millicores=2000, memory_bytes=8 * GIB, storage_bytes=100 * GIB
        ),
        "shared_kafka": None,
    }
    return serverless_spec(cluster_id, **{**values, **overrides})


def of_kind(manifests: list[dict], kind: str) -> list[dict]:
    return [manifest for manifest in manifests if manifest["kind"] == kind]


def one(manifests: list[dict], kind: str, name: str | None = None) -> dict:
    found = [m for m in of_kind(manifests, kind) if name is None or m["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name, [m["metadata"]["name"] for m in found])
    return found[0]


def user_of(manifests: list[dict], cred: CredentialSpec) -> dict:
    return one(manifests, "KafkaUser", cred.username)


# Invariants every rendering keeps ---------------------------------------------------------------


def assert_invariants(spec: ClusterSpec, manifests: list[dict]) -> None:
    keys = set()
    for manifest in manifests:
        metadata = manifest["metadata"]
        assert set(manifest) <= {
            "apiVersion",
            "kind",
            "metadata",
            "spec",
            "data",
            "stringData",
            "type",
            "roleRef",
            "subjects",
        }
        assert "status" not in manifest
        assert set(metadata) <= {"name", "namespace", "labels"}
        labels = metadata["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "sluice"
        assert labels["sluice.io/org"] == spec.organization_id
        assert labels["sluice.io/cluster"] == spec.cluster_id
        for key, value in labels.items():
            assert len(value) <= 63, (key, value)
            assert LABEL_VALUE.match(value), (key, value)
        name = metadata["name"]
        assert len(name) <= 253, name
        assert DNS_SUBDOMAIN.match(name), name
        if manifest["kind"] == "Namespace":
            assert "namespace" not in metadata
            assert DNS_LABEL.match(name)
            assert len(name) <= 63
        else:
            assert metadata["namespace"] == namespace_for(spec)
        if manifest["kind"] in STRIMZI_KINDS_WITH_CLUSTER_LABEL:
            assert labels["strimzi.io/cluster"] == kafka_name(spec)
        if manifest["kind"] == "Secret":
            assert "data" not in manifest
            assert manifest["type"] == "Opaque"
        key = (manifest["kind"], metadata.get("namespace"), name)
        assert key not in keys, key
        keys.add(key)
    json.dumps(manifests)  # plain data only: no sets, tuples or objects


# Topic names as tenants give them ------------------------------------------------------------

kafka_topic_names = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFXYZ0123456789._-", min_size=1, max_size=249
).filter(lambda name: name not in {".", ".."})


# Serverless -------------------------------------------------------------------------------------


def test_serverless_renders_only_topics_secrets_and_users_in_the_shared_namespace():
    spec = serverless_spec()
    manifests = render(spec)
    assert_invariants(spec, manifests)
    assert [m["kind"] for m in manifests] == [
        "KafkaTopic",
        "KafkaTopic",
        "Secret",
        "KafkaUser",
        "Secret",
        "KafkaUser",
    ]
    assert {m["metadata"]["namespace"] for m in manifests} == {"sl-cell-eu1"}
    assert {
        m["metadata"]["labels"]["strimzi.io/cluster"] for m in of_kind(manifests, "KafkaUser")
    } == {"shared"}


def test_serverless_topics_are_prefixed_by_the_cluster():
    spec = serverless_spec()
    orders = one(render(spec), "KafkaTopic", "kc-ab12cd34ef56gh78.orders")
    assert orders["apiVersion"] == "kafka.strimzi.io/v1"
    assert orders["spec"]["topicName"] == "kc_ab12cd34ef56gh78.orders"
    assert orders["spec"]["partitions"] == 6
    assert orders["spec"]["replicas"] == 3
    assert orders["spec"]["config"]["cleanup.policy"] == "delete"
    audit = one(render(spec), "KafkaTopic", topic_resource_name(spec, "Audit_Log"))
    assert audit["spec"]["topicName"] == "kc_ab12cd34ef56gh78.Audit_Log"


def test_serverless_user_authenticates_with_the_password_secret():
    spec = serverless_spec()
    cred = spec.credentials[0]
    manifests = render(spec)
    secret = one(manifests, "Secret", cred.password_secret)
    assert secret["stringData"] == {"password": cred.password}
    user = user_of(manifests, cred)
    assert user["spec"]["authentication"] == {
        "type": "scram-sha-512",
        "password": {
            "valueFrom": {"secretKeyRef": {"name": cred.password_secret, "key": "password"}}
        },
    }
    # The user's Secret comes first, so it exists when the user operator looks for it.
    assert manifests.index(secret) < manifests.index(user)


def test_serverless_acls_are_prefixed_to_the_cluster_and_grant_no_topic_administration():
    spec = serverless_spec()
    acls = user_of(render(spec), spec.credentials[0])["spec"]["authorization"]
    assert acls["type"] == "simple"
    by_type = {acl["resource"]["type"]: acl for acl in acls["acls"]}
    assert set(by_type) == {"topic", "group", "transactionalId"}  # nothing on the cluster
    for acl in acls["acls"]:
        assert acl["type"] == "allow"
        assert acl["resource"]["patternType"] == "prefix"
        assert acl["resource"]["name"] == "kc_ab12cd34ef56gh78."
        assert "All" not in acl["operations"]
    assert by_type["topic"]["operations"] == ["Describe", "DescribeConfigs", "Read", "Write"]
    assert by_type["group"]["operations"] == ["Read", "Describe", "Delete"]
    assert by_type["transactionalId"]["operations"] == ["Describe", "Write"]


def test_serverless_acl_prefix_reaches_no_other_cluster():
    mine, theirs = "kc_aaaaaaaaaaaaaaaa", "kc_aaaaaaaaaaaaaaaab"  # one id starts the other
    spec = serverless_spec(
        mine, credentials=(credential(mine, "app"),), topics=(TopicSpec("t", 1, 1),)
    )
    prefixes = {
        acl["resource"]["name"]
        for user in of_kind(render(spec), "KafkaUser")
        for acl in user["spec"]["authorization"]["acls"]
    }
    assert prefixes == {f"{mine}."}
    others = [kafka_topic_name(serverless_spec(theirs), name) for name in ("t", "x.y", "")]
    others += [f"{theirs}.group", f"{theirs}.tx", theirs]
    for prefix in prefixes:
        assert not any(other.startswith(prefix) for other in others)
    assert kafka_topic_name(spec, "t").startswith(f"{mine}.")


def quotas_by_user(spec: ClusterSpec) -> dict[str, dict]:
    return {
        user["metadata"]["name"]: user["spec"]["quotas"]
        for user in of_kind(render(spec), "KafkaUser")
    }


def test_serverless_principals_share_the_cluster_limits_across_principals_and_brokers():
    spec = serverless_spec(shared_kafka=dataclasses.replace(SHARED, brokers=3))
    quotas = quotas_by_user(spec)
    assert len(quotas) == 2
    for quota in quotas.values():
        assert quota == {
            "producerByteRate": 10 * 1024**2 // 6,
            "consumerByteRate": 30 * 1024**2 // 6,
            "requestPercentage": 12,
            "controllerMutationRate": 2.5,
        }
    # Kafka throttles each principal on each broker on its own: all of them together at full
    # speed on every broker stay within the cluster's limits.
    assert sum(q["producerByteRate"] for q in quotas.values()) * 3 <= 10 * 1024**2
    assert sum(q["consumerByteRate"] for q in quotas.values()) * 3 <= 30 * 1024**2
    assert sum(q["requestPercentage"] for q in quotas.values()) <= 25
    assert sum(q["controllerMutationRate"] for q in quotas.values()) <= 5.0


def test_serverless_shares_change_for_every_user_when_a_credential_comes_or_goes():
    alone, second, third = (credential(suffix=s) for s in ("app", "batch", "audit"))
    one_broker = dataclasses.replace(SHARED, brokers=1)

    def producer_rates(*credentials) -> dict[str, int]:
        spec = serverless_spec(shared_kafka=one_broker, credentials=credentials)
        return {name: q["producerByteRate"] for name, q in quotas_by_user(spec).items()}

    ingress = 10 * 1024**2
    assert producer_rates(alone) == {alone.username: ingress}
    assert producer_rates(alone, second) == {
        alone.username: ingress // 2,
        second.username: ingress // 2,
    }
    assert producer_rates(alone, second, third) == {
        c.username: ingress // 3 for c in (alone, second, third)
    }
    assert producer_rates(alone, third) == {
        alone.username: ingress // 2,
        third.username: ingress // 2,
    }


def test_serverless_own_quotas_are_spread_over_the_brokers_and_capped_to_the_share():
    shared = dataclasses.replace(SHARED, brokers=4)
    slow = credential(suffix="slow", producer_byte_rate=4096, request_percentage=5)
    generous = credential(
        suffix="big",
        producer_byte_rate=10**12,
        consumer_byte_rate=0,
        request_percentage=400,
        controller_mutation_rate=0.5,
    )
    quotas = quotas_by_user(serverless_spec(shared_kafka=shared, credentials=(slow, generous)))
    assert quotas[slow.username] == {
        "producerByteRate": 1024,  # its 4096 B/s across the cluster, on each of 4 brokers
        "consumerByteRate": 30 * 1024**2 // 8,
        "requestPercentage": 5,
        "controllerMutationRate": 2.5,
    }
    assert quotas[generous.username] == {
        "producerByteRate": 10 * 1024**2 // 8,
        "consumerByteRate": 0,  # zero is kept: the principal may not read
        "requestPercentage": 12,
        "controllerMutationRate": 0.5,
    }


def test_serverless_request_share_is_at_least_one_percent():
    many = tuple(credential(suffix=f"c{index}") for index in range(30))
    quotas = quotas_by_user(serverless_spec(credentials=many))
    assert {q["requestPercentage"] for q in quotas.values()} == {1}


def test_serverless_retention_bytes_is_bounded_by_the_storage_share_of_a_partition():
    ceiling = 50 * GIB // 100  # the tier's storage over its partition limit
    spec = serverless_spec(
        limits=limits(max_storage_bytes=50 * GIB, max_partitions=100),
        topics=(
            TopicSpec("unlimited", 1, 3, {"retention.bytes": "-1"}),
            TopicSpec("huge", 1, 3, {"retention.bytes": str(10**15)}),
            TopicSpec("small", 1, 3, {"retention.bytes": "1048576"}),
            TopicSpec("default", 1, 3),
        ),
    )
    retention = {
        topic["spec"]["topicName"].split(".", 1)[1]: topic["spec"]["config"]["retention.bytes"]
        for topic in of_kind(render(spec), "KafkaTopic")
    }
    assert retention == {
        "unlimited": str(ceiling),
        "huge": str(ceiling),
        "small": "1048576",
        "default": str(ceiling),
    }
    # A dedicated cluster's storage is its own volumes: retention.bytes is the tenant's to set.
    dedicated = dedicated_spec(
        topics=(TopicSpec("unlimited", 1, 3, {"retention.bytes": "-1"}), TopicSpec("d", 1, 3))
    )
    configs = [topic["spec"]["config"] for topic in of_kind(render(dedicated), "KafkaTopic")]
    assert [c.get("retention.bytes") for c in configs] == ["-1", None]


def test_serverless_retention_is_capped_and_always_set():
    spec = serverless_spec(
        limits=limits(max_retention_ms=3 * DAY_MS),
        topics=(
            TopicSpec("forever", 1, 3, {"retention.ms": "-1"}),
            TopicSpec("long", 1, 3, {"retention.ms": str(30 * DAY_MS)}),
            TopicSpec("short", 1, 3, {"retention.ms": "60000"}),
            TopicSpec("default", 1, 3),
        ),
    )
    retention = {
        topic["spec"]["topicName"].split(".", 1)[1]: topic["spec"]["config"]["retention.ms"]
        for topic in of_kind(render(spec), "KafkaTopic")
    }
    assert retention == {
        "forever": str(3 * DAY_MS),
        "long": str(3 * DAY_MS),
        "short": "60000",
        "default": str(3 * DAY_MS),
    }
    roomy = serverless_spec(
        limits=limits(max_retention_ms=90 * DAY_MS), topics=(TopicSpec("d", 1, 3),)
    )
    # Kafka's own default (7 days) when the tier allows more.
    assert one(render(roomy), "KafkaTopic")["spec"]["config"]["retention.ms"] == str(7 * DAY_MS)


def test_serverless_usernames_and_secrets_must_belong_to_the_cluster_or_the_credential():
    cred_id = "cred_0123456789abcdef"
    accepted = [
        {"username": "kc-ab12cd34ef56gh78.app", "password_secret": "kc-ab12cd34ef56gh78.app-pw"},
        {"username": "cred-0123456789abcdef", "password_secret": "cred-0123456789abcdef-password"},
        {
            "username": "kc-ab12cd34ef56gh78-0123456789abcdef",
            "password_secret": "cred-0123456789abcdef-scram",
        },
    ]
    for names in accepted:
        render(serverless_spec(credentials=(credential(credential_id=cred_id, **names),)))
    refused = [
        {"username": "app"},
        {"username": "kc-ab12cd34ef56gh7"},
        {"username": "kc-zz12cd34ef56gh78.app"},  # another cluster's scope
        {"username": "kc-zz12cd34ef56gh78-0123456789abcdef"},
        {"username": "kc-ab12cd34ef56gh78x-app"},
        {"username": "cred-0123456789abcdefg"},
        {"password_secret": "app-password"},
        {"password_secret": "kc-zz12cd34ef56gh78.app"},
    ]
    for names in refused:
        with pytest.raises(InvalidSpec):
            render(serverless_spec(credentials=(credential(credential_id=cred_id, **names),)))


def test_serverless_without_a_shared_kafka_is_refused():
    with pytest.raises(InvalidSpec):
        render(serverless_spec(shared_kafka=None))


# Dedicated --------------------------------------------------------------------------------------


def test_dedicated_renders_the_whole_cluster_in_order():
    spec = dedicated_spec()
    manifests = render(spec)
    assert_invariants(spec, manifests)
    assert [(m["kind"], m["metadata"]["name"]) for m in manifests] == [
        ("Namespace", "sl-kc-ab12cd34ef56gh78"),
        ("RoleBinding", "sluice-control-plane"),
        ("NetworkPolicy", "default-deny-ingress"),
        ("NetworkPolicy", "allow-namespace-and-operator"),
        ("NetworkPolicy", "allow-metrics-scraping"),
        ("ResourceQuota", "kafka-capacity"),
        ("LimitRange", "container-defaults"),
        ("ConfigMap", "kafka-metrics"),
        ("KafkaNodePool", "controller"),
        ("KafkaNodePool", "broker"),
        ("Kafka", "kc-ab12cd34ef56gh78"),
        ("KafkaTopic", "orders"),
        ("KafkaTopic", topic_resource_name(spec, "Audit_Log")),
        ("Secret", spec.credentials[0].password_secret),
        ("KafkaUser", spec.credentials[0].username),
        ("Secret", spec.credentials[1].password_secret),
        ("KafkaUser", spec.credentials[1].username),
    ]
    for manifest in manifests:
        if manifest["apiVersion"].startswith("kafka.strimzi.io"):
            assert manifest["apiVersion"] == "kafka.strimzi.io/v1"


def test_dedicated_namespace_binds_sluice_tenant_to_the_control_planes_account_only():
    account = ControlPlaneAccount(namespace="platform", name="sluice")
    binding = one(render(dedicated_spec(control_plane=account)), "RoleBinding")
    assert binding["metadata"]["namespace"] == "sl-kc-ab12cd34ef56gh78"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "sluice-tenant",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "sluice", "namespace": "platform"}
    ]
    # A serverless cluster writes beside the shared Kafka, where its role is installed once.
    assert of_kind(render(serverless_spec()), "RoleBinding") == []


def test_dedicated_network_policies_deny_ingress_except_from_the_namespace_and_operator():
    policies = {
        p["metadata"]["name"]: p["spec"] for p in of_kind(render(dedicated_spec()), "NetworkPolicy")
    }
    deny = policies["default-deny-ingress"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}  # no rule: nothing in
    allow = policies["allow-namespace-and-operator"]
    assert allow["podSelector"] == {}
    assert allow["ingress"] == [
        {
            "from": [
                {"podSelector": {}},
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "strimzi"}}},
            ]
        }
    ]
    assert rendering.STRIMZI_OPERATOR_NAMESPACE == "strimzi"
    # No client port is opened here: Strimzi's own per-listener policies do that.
    opened = [
        port["port"]
        for spec in policies.values()
        for rule in spec.get("ingress", [])
        for port in rule.get("ports", [])
    ]
    assert opened == [9404]
    assert not {9092, 9094} & set(opened)


def test_dedicated_quota_is_sized_from_the_brokers_with_room_for_the_operands():
    spec = dedicated_spec(
        sizing=Sizing(brokers=3, cpu_millicores=2000, memory_bytes=8 * GIB, storage_bytes=100 * GIB)
    )
    hard = one(render(spec), "ResourceQuota")["spec"]["hard"]
    # 3 brokers (2 cores, 8 GiB, 100 GiB) + 3 controllers (1 core, 2 GiB, 20 GiB) + operands:
    # topic operator, user operator, Kafka Exporter, twice (surge), 200m/500m cpu, 512 MiB each.
    assert hard == {
        "requests.cpu": "10200m",
        "limits.cpu": "12",
        "requests.memory": "33Gi",
        "limits.memory": "33Gi",
        "requests.storage": "360Gi",
        "persistentvolumeclaims": "6",
        "pods": "10",
    }


def test_small_brokers_get_controllers_no_larger_than_themselves():
    spec = dedicated_spec(
        sizing=Sizing(
            brokers=1, cpu_millicores=500, memory_bytes=GIB, storage_bytes=10 * GIB, controllers=1
        )
    )
    pools = {p["metadata"]["name"]: p["spec"] for p in of_kind(render(spec), "KafkaNodePool")}
    assert pools["controller"]["resources"]["limits"] == {"cpu": "500m", "memory": "1Gi"}
    assert pools["controller"]["storage"]["size"] == "10Gi"


def test_dedicated_limit_range_gives_container_defaults():
    (limit,) = one(render(dedicated_spec()), "LimitRange")["spec"]["limits"]
    assert limit["type"] == "Container"
    assert set(limit) == {"type", "default", "defaultRequest"}


def test_dedicated_metrics_config_map_holds_strimzi_jmx_exporter_rules():
    config_map = one(render(dedicated_spec()), "ConfigMap", "kafka-metrics")
    rules_text = config_map["data"]["kafka-metrics-config.yml"]
    rules = yaml.safe_load(rules_text)
    assert rules["lowercaseOutputName"] is True
    # The byte counters metering reads (kafka_server_brokertopicmetrics_bytesin_total).
    assert any("PerSec" in rule["pattern"] for rule in rules["rules"])
    original = REPO_ROOT.parent / "shared" / "testenv" / "jmx-exporter-kafka.yaml"
    if original.exists():
        assert rules_text == original.read_text()
    kafka = one(render(dedicated_spec()), "Kafka")["spec"]["kafka"]
    assert kafka["metricsConfig"] == {
        "type": "jmxPrometheusExporter",
        "valueFrom": {
            "configMapKeyRef": {"name": "kafka-metrics", "key": "kafka-metrics-config.yml"}
        },
    }


def test_dedicated_node_pools_are_sized_from_the_tier():
    spec = dedicated_spec(
        sizing=Sizing(
            brokers=6,
            cpu_millicores=1500,
            memory_bytes=6 * GIB,
            storage_bytes=500 * GIB,
            controllers=5,
        )
    )
    pools = {p["metadata"]["name"]: p for p in of_kind(render(spec), "KafkaNodePool")}
    broker, controller = pools["broker"]["spec"], pools["controller"]["spec"]
    assert pools["broker"]["metadata"]["labels"]["strimzi.io/cluster"] == "kc-ab12cd34ef56gh78"
    assert (broker["roles"], broker["replicas"]) == (["broker"], 6)
    assert (controller["roles"], controller["replicas"]) == (["controller"], 5)
    assert broker["storage"] == {"type": "persistent-claim", "size": "500Gi", "deleteClaim": True}
    assert broker["resources"] == {
        "requests": {"cpu": "1500m", "memory": "6Gi"},
        "limits": {"cpu": "1500m", "memory": "6Gi"},
    }


def test_dedicated_kafka_is_kraft_with_scram_listeners_and_simple_authorization():
    kafka = one(render(dedicated_spec(kafka_version="4.0.0")), "Kafka")
    assert kafka["metadata"]["name"] == "kc-ab12cd34ef56gh78"
    assert "annotations" not in kafka["metadata"]  # node pools and KRaft need none in v1
    spec = kafka["spec"]
    assert set(spec) == {"kafka", "entityOperator", "kafkaExporter"}
    assert spec["kafka"]["version"] == "4.0.0"
    assert "replicas" not in spec["kafka"]
    assert "storage" not in spec["kafka"]
    assert spec["kafka"]["listeners"] == [
        {
            "name": "scram",
            "port": 9092,
            "type": "internal",
            "tls": False,
            "authentication": {"type": "scram-sha-512"},
        },
        {
            "name": "external",
            "port": 9094,
            "type": "loadbalancer",
            "tls": True,
            "authentication": {"type": "scram-sha-512"},
        },
    ]
    assert spec["kafka"]["authorization"] == {"type": "simple"}  # no standing super user
    assert set(spec["entityOperator"]) == {"topicOperator", "userOperator"}


@pytest.mark.parametrize(
    ("brokers", "replication", "min_in_sync", "connections"),
    [(1, 1, 1, 1000), (2, 2, 1, 500), (3, 3, 2, 334), (6, 3, 2, 167)],
)
def test_dedicated_broker_config_follows_the_broker_count(
    brokers, replication, min_in_sync, connections
):
    sizing = Sizing(
        brokers=brokers, cpu_millicores=1000, memory_bytes=4 * GIB, storage_bytes=GIB * 50
    )
    config = one(render(dedicated_spec(sizing=sizing)), "Kafka")["spec"]["kafka"]["config"]
    assert config == {
        "auto.create.topics.enable": False,
        "default.replication.factor": replication,
        "min.insync.replicas": min_in_sync,
        "offsets.topic.replication.factor": replication,
        "transaction.state.log.replication.factor": replication,
        "transaction.state.log.min.isr": min_in_sync,
        "log.retention.ms": 3 * DAY_MS,
        "max.connections": connections,
    }


def test_dedicated_retention_is_capped_by_the_tier():
    roomy = one(render(dedicated_spec(limits=limits(max_retention_ms=30 * DAY_MS))), "Kafka")
    assert roomy["spec"]["kafka"]["config"]["log.retention.ms"] == 7 * DAY_MS
    spec = dedicated_spec(
        topics=(
            TopicSpec("forever", 1, 3, {"retention.ms": "-1"}),
            TopicSpec("week", 1, 3, {"retention.ms": str(7 * DAY_MS)}),
            TopicSpec("hour", 1, 3, {"retention.ms": "3600000", "cleanup.policy": "compact"}),
            TopicSpec("plain", 1, 3),
        )
    )
    configs = {
        t["spec"]["topicName"]: t["spec"]["config"] for t in of_kind(render(spec), "KafkaTopic")
    }
    assert configs == {
        "forever": {"retention.ms": str(3 * DAY_MS)},
        "week": {"retention.ms": str(3 * DAY_MS)},
        "hour": {"cleanup.policy": "compact", "retention.ms": "3600000"},
        "plain": {},  # the broker's capped log.retention.ms applies
    }


def test_dedicated_topics_keep_their_names():
    spec = dedicated_spec()
    topics = of_kind(render(spec), "KafkaTopic")
    assert [t["spec"]["topicName"] for t in topics] == ["orders", "Audit_Log"]
    assert {t["metadata"]["labels"]["strimzi.io/cluster"] for t in topics} == {
        "kc-ab12cd34ef56gh78"
    }


def test_dedicated_users_own_the_data_plane_but_not_the_cluster():
    spec = dedicated_spec()
    acls = user_of(render(spec), spec.credentials[0])["spec"]["authorization"]["acls"]
    by_type = {acl["resource"]["type"]: acl for acl in acls}
    for resource_type in ("topic", "group", "transactionalId"):
        assert by_type[resource_type]["resource"] == {
            "type": resource_type,
            "name": "*",
            "patternType": "literal",
        }
    assert by_type["topic"]["operations"] == ["Describe", "DescribeConfigs", "Read", "Write"]
    assert by_type["cluster"]["operations"] == ["Describe", "DescribeConfigs"]
    granted = {op for acl in acls for op in acl["operations"]}
    assert not granted & {"All", "Alter", "AlterConfigs", "ClusterAction", "Create"}


def test_dedicated_quotas_only_when_the_credential_sets_them_and_spread_over_its_brokers():
    plain = credential(suffix="app")
    throttled = credential(suffix="batch", consumer_byte_rate=3072, request_percentage=40)
    manifests = render(dedicated_spec(credentials=(plain, throttled)))  # 3 brokers
    assert "quotas" not in user_of(manifests, plain)["spec"]
    # Its own brokers, no neighbours: no share, but its rate across the cluster, per broker.
    assert user_of(manifests, throttled)["spec"]["quotas"] == {
        "consumerByteRate": 1024,
        "requestPercentage": 40,
    }


def test_dedicated_names_strimzi_uses_are_refused():
    for names in (
        {"username": "kc-ab12cd34ef56gh78-cluster-ca-cert"},
        {"username": "kc-ab12cd34ef56gh78-broker-0"},
        {"password_secret": "kc-ab12cd34ef56gh78-clients-ca"},
        {"password_secret": "kc-ab12cd34ef56gh78-kafka.x"},
    ):
        with pytest.raises(InvalidSpec):
            render(dedicated_spec(credentials=(credential(**names),)))


@pytest.mark.parametrize("make", [serverless_spec, dedicated_spec])
def test_usernames_scoped_by_the_cluster_with_a_dash_suit_both_kinds(make):
    cred = credential(username="kc-ab12cd34ef56gh78-0123456789abcdef")
    spec = make(credentials=(cred,))
    assert one(render(spec), "KafkaUser")["metadata"]["name"] == cred.username


@pytest.mark.parametrize(
    "overrides",
    [
        {"sizing": None},
        {"sizing": Sizing(brokers=0, cpu_millicores=1000, memory_bytes=GIB, storage_bytes=GIB)},
        {"organization_id": "Org-1"},
        {"cluster_id": "kc-ab12"},
    ],
)
def test_dedicated_specs_that_cannot_be_rendered_are_refused(overrides):
    with pytest.raises(InvalidSpec):
        render(dedicated_spec(**overrides))


# Credentials ------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [serverless_spec, dedicated_spec])
def test_the_password_is_only_in_the_secrets_string_data(make):
    spec = make()
    manifests = render(spec)
    for cred in spec.credentials:
        holders = [m for m in manifests if cred.password in json.dumps(m)]
        assert holders == [one(manifests, "Secret", cred.password_secret)]
        assert json.dumps(holders[0]).count(cred.password) == 1
        assert holders[0]["stringData"][cred.password_key] == cred.password
    assert "pw-app" not in repr(spec.credentials[0])


def test_a_custom_password_key_is_used_by_both_secret_and_user():
    cred = credential(password_key="sasl-password")
    manifests = render(serverless_spec(credentials=(cred,)))
    assert one(manifests, "Secret")["stringData"] == {"sasl-password": cred.password}
    ref = user_of(manifests, cred)["spec"]["authentication"]["password"]["valueFrom"][
        "secretKeyRef"
    ]
    assert ref == {"name": cred.password_secret, "key": "sasl-password"}


def test_without_the_password_the_secret_is_rendered_without_data():
    cred = credential(password="")
    manifests = render(dedicated_spec(credentials=(cred,)))
    secret = one(manifests, "Secret")
    assert "stringData" not in secret
    assert "data" not in secret
    assert user_of(manifests, cred)["spec"]["authentication"]["password"]


@pytest.mark.parametrize(
    "names",
    [
        {"username": "kc-ab12cd34ef56gh78.App"},
        {"username": "kc-ab12cd34ef56gh78.a_b"},
        {"username": "kc-ab12cd34ef56gh78." + "a" * 60},
        {"password_secret": "Secret"},
    ],
)
def test_names_kubernetes_would_reject_are_refused(names):
    with pytest.raises(InvalidSpec):
        render(dedicated_spec(credentials=(credential(**names),)))


def test_a_password_secret_may_not_be_named_like_a_user():
    first = credential(suffix="one")
    second = credential(suffix="two", password_secret=first.username)
    with pytest.raises(InvalidSpec, match="named like a user"):
        render(dedicated_spec(credentials=(first, second)))


def test_two_credentials_sharing_a_secret_are_refused():
    first = credential(suffix="one")
    second = credential(suffix="two", password_secret=first.password_secret)
    with pytest.raises(InvalidSpec, match="two objects"):
        render(dedicated_spec(credentials=(first, second)))


def test_user_resource_name_is_the_username():
    spec = dedicated_spec()
    assert user_resource_name(spec, spec.credentials[0]) == "kc-ab12cd34ef56gh78.app"


# Determinism ------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [serverless_spec, dedicated_spec])
def test_rendering_is_deterministic_and_does_not_share_objects(make):
    spec = make()
    first, second = render(spec), render(spec)
    assert first == second
    assert json.dumps(first) == json.dumps(second)
    pristine = copy.deepcopy(first)
    second[0]["metadata"]["labels"]["tampered"] = "yes"
    for manifest in second:
        manifest.get("spec", {}).clear()
    assert render(spec) == pristine
    assert first == pristine


def test_topic_config_order_does_not_matter():
    a = dedicated_spec(topics=(TopicSpec("t", 1, 1, {"a": "1", "b": "2"}),))
    b = dedicated_spec(topics=(TopicSpec("t", 1, 1, {"b": "2", "a": "1"}),))
    assert json.dumps(render(a)) == json.dumps(render(b))


# Properties over generated specs ------------------------------------------------------------------

ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=16, max_size=16)


@st.composite
def cluster_specs(draw) -> ClusterSpec:
    cluster_id = f"kc_{draw(ids)}"
    kind = draw(st.sampled_from(Kind))
    topic_names = draw(
        st.lists(kafka_topic_names.filter(lambda n: len(n) <= 200), max_size=8, unique=True)
    )
    topics = tuple(
        TopicSpec(
            name,
            partitions=draw(st.integers(1, 1000)),
            replicas=draw(st.integers(1, 5)),
            config=draw(
                st.dictionaries(
                    st.sampled_from(
                        ["retention.ms", "retention.bytes", "cleanup.policy", "segment.bytes"]
                    ),
                    st.sampled_from(["-1", "1000", str(365 * DAY_MS), str(10**15), "compact"]),
                )
            ),
        )
        for name in topic_names
    )
    suffixes = draw(
        st.lists(
            st.from_regex(r"^[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?$", fullmatch=True),
            max_size=5,
            unique=True,
        )
    )
    credentials = []
    for index, suffix in enumerate(suffixes):
        credential_id = f"cred_{index:016d}"
        username = draw(
            st.sampled_from(
                [
                    resource_name(credential_id),
                    f"{resource_name(cluster_id)}.{suffix}",
                    f"{resource_name(cluster_id)}-{credential_id[5:]}",
                ]
            )
        )
        credentials.append(
            CredentialSpec(
                credential_id=credential_id,
                username=username,
                password_secret=f"{resource_name(credential_id)}-password",
                password=draw(st.text(min_size=0, max_size=30)),
                producer_byte_rate=draw(st.none() | st.integers(0, 10**9)),
                consumer_byte_rate=draw(st.none() | st.integers(0, 10**9)),
                request_percentage=draw(st.none() | st.integers(0, 400)),
                controller_mutation_rate=draw(st.none() | st.floats(0, 100, allow_nan=False)),
            )
        )
    sizing = None
    if kind == Kind.DEDICATED:
        sizing = Sizing(
            brokers=draw(st.integers(1, 12)),
            cpu_millicores=draw(st.integers(100, 16000)),
            memory_bytes=draw(st.integers(256 * 1024**2, 64 * GIB)),
            storage_bytes=draw(st.integers(GIB, 4096 * GIB)),
            controllers=draw(st.sampled_from([1, 3, 5])),
        )
    return ClusterSpec(
        cluster_id=cluster_id,
        organization_id=f"org_{draw(ids)}",
        name=draw(st.text(max_size=40)),
        kind=kind,
        tier=str(kind),
        generation=draw(st.integers(1, 10**6)),
        kafka_version=draw(st.sampled_from(["4.0.0", "4.1.0"])),
        limits=limits(
            max_retention_ms=draw(st.integers(3600_000, 365 * DAY_MS)),
            max_connections=draw(st.integers(1, 100_000)),
        ),
        sizing=sizing,
        shared_kafka=dataclasses.replace(SHARED, brokers=draw(st.integers(1, 12)))
        if kind == Kind.SERVERLESS
        else None,
        topics=topics,
        credentials=tuple(credentials),
    )


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(spec=cluster_specs())
def test_generated_specs_render_valid_isolated_and_stable_manifests(spec):
    manifests = render(spec)
    assert_invariants(spec, manifests)
    assert render(spec) == manifests
    kinds = {m["kind"] for m in manifests}
    assert len(of_kind(manifests, "KafkaTopic")) == len(spec.topics)
    assert len(of_kind(manifests, "KafkaUser")) == len(spec.credentials)
    assert len(of_kind(manifests, "Secret")) == len(spec.credentials)
    for topic in of_kind(manifests, "KafkaTopic"):
        retention = topic["spec"]["config"].get("retention.ms")
        if retention not in (None, "compact", "1000"):
            assert 0 <= int(retention) <= spec.limits.max_retention_ms
    if spec.kind == Kind.SERVERLESS:
        assert kinds <= {"KafkaTopic", "Secret", "KafkaUser"}
        prefix = f"{spec.cluster_id}."
        for topic in of_kind(manifests, "KafkaTopic"):
            assert topic["spec"]["topicName"].startswith(prefix)
            assert topic["metadata"]["name"].startswith(f"{resource_name(spec.cluster_id)}.")
        for user in of_kind(manifests, "KafkaUser"):
            for acl in user["spec"]["authorization"]["acls"]:
                assert acl["resource"] == {
                    **acl["resource"],
                    "name": prefix,
                    "patternType": "prefix",
                }
        # Summed over principals and brokers, within the cluster's limits.
        quotas = [user["spec"]["quotas"] for user in of_kind(manifests, "KafkaUser")]
        brokers = spec.shared_kafka.brokers
        limits = spec.limits
        assert (
            sum(q["producerByteRate"] for q in quotas) * brokers <= limits.ingress_bytes_per_second
        )
        assert (
            sum(q["consumerByteRate"] for q in quotas) * brokers <= limits.egress_bytes_per_second
        )
        assert sum(q["requestPercentage"] for q in quotas) <= max(
            limits.request_percentage, len(quotas)
        )
        for topic in of_kind(manifests, "KafkaTopic"):
            retention_bytes = int(topic["spec"]["config"]["retention.bytes"])
            assert 0 <= retention_bytes <= limits.max_partition_retention_bytes
    else:
        assert {
            "Namespace",
            "NetworkPolicy",
            "ResourceQuota",
            "LimitRange",
            "ConfigMap",
            "Kafka",
        } <= kinds
        kafka = one(manifests, "Kafka")["spec"]["kafka"]
        assert kafka["config"]["log.retention.ms"] <= spec.limits.max_retention_ms
        assert kafka["config"]["default.replication.factor"] <= spec.sizing.brokers
        pools = {
            p["metadata"]["name"]: p["spec"]["replicas"]
            for p in of_kind(manifests, "KafkaNodePool")
        }
        assert pools == {"controller": spec.sizing.controllers, "broker": spec.sizing.brokers}


@given(spec=cluster_specs())
def test_changing_nothing_but_the_generation_renders_the_same(spec):
    assert render(dataclasses.replace(spec, generation=spec.generation + 1)) == render(spec)
