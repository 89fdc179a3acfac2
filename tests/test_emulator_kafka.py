"""The Strimzi emulator on the Kafka test broker: a KafkaUser and a KafkaTopic applied through
the API server work with a real Kafka client, as they do when Strimzi's user and topic
operators apply them: SCRAM credentials, prefixed ACLs, quotas, partitions, topic configs, and
their deletion."""

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AclOperation, NewTopic, ResourcePatternType, ResourceType
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.support.services import wait_for
from tests.support.strimzi_emulator import GROUP, VERSION

pytestmark = [pytest.mark.kafka, pytest.mark.kube]

TIMEOUT = 60
SERVERLESS_ACLS = [
    ("topic", ["Describe", "DescribeConfigs", "Read", "Write"]),
    ("group", ["Read", "Describe", "Delete"]),
    ("transactionalId", ["Describe", "Write"]),
]
QUOTAS = {
    "producerByteRate": 1048576,
    "consumerByteRate": 2097152,
    "requestPercentage": 25,
    "controllerMutationRate": 5,
}


# Objects, as clusters/rendering/ writes them ---------------------------------------------


def new_namespace(kube) -> str:
    name = f"ek-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(kube.api_client()).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
    )
    return name


def custom(kube):
    return client.CustomObjectsApi(kube.api_client())


def prefix_acls(prefix: str, rules=SERVERLESS_ACLS) -> list[dict]:
    return [
        {
            "type": "allow",
            "resource": {"type": kind, "name": prefix, "patternType": "prefix"},
            "operations": operations,
        }
        for kind, operations in rules
    ]


def create_user(
    kube, namespace: str, name: str, password: str, acls: list[dict], quotas: dict | None
) -> None:
    secret = f"{name}-password"
    client.CoreV1Api(kube.api_client()).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=secret),
            type="Opaque",
            string_data={"password": password},
        ),
    )
    spec = {
        "authentication": {
            "type": "scram-sha-512",
            "password": {"valueFrom": {"secretKeyRef": {"name": secret, "key": "password"}}},
        },
        "authorization": {"type": "simple", "acls": acls},
    }
    if quotas:
        spec["quotas"] = quotas
    custom(kube).create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "kafkausers",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "KafkaUser",
            "metadata": {"name": name, "labels": {"strimzi.io/cluster": "shared"}},
            "spec": spec,
        },
    )


def create_topic(
    kube, namespace: str, name: str, topic: str, partitions: int, config: dict[str, str]
) -> None:
    custom(kube).create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "kafkatopics",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "KafkaTopic",
            "metadata": {"name": name, "labels": {"strimzi.io/cluster": "shared"}},
            # Three replicas, as a production topic has: the one-node test broker gets one.
            "spec": {"topicName": topic, "partitions": partitions, "replicas": 3, "config": config},
        },
    )


def patch_spec(kube, namespace: str, plural: str, name: str, spec: dict) -> None:
    custom(kube).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, name, {"spec": spec}
    )


def read(kube, namespace: str, plural: str, name: str) -> dict | None:
    try:
        return custom(kube).get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def poll(probe, *, what: str, timeout: float = TIMEOUT):
    """probe() until it returns something truthy (bounded in time); that."""
    found = []
    wait_for(lambda: found.append(probe()) or found[-1], timeout=timeout, what=what)
    return found[-1]


def settled(kube, namespace: str, plural: str, name: str) -> dict:
    """The object once the emulator has answered its current generation: its condition."""

    def condition():
        item = read(kube, namespace, plural, name)
        status = (item or {}).get("status") or {}
        if status.get("observedGeneration") != item["metadata"]["generation"]:
            return None
        conditions = status.get("conditions") or []
        return conditions[0] if conditions else None

    return poll(condition, what=f"{plural}/{name} to be answered")


def ready(kube, namespace: str, plural: str, name: str) -> dict:
    condition = settled(kube, namespace, plural, name)
    assert condition["type"] == "Ready", condition
    return read(kube, namespace, plural, name)


# Clients ----------------------------------------------------------------------------------


def produce(env, topic: str, values: list[bytes], **credentials) -> list[KafkaError | None]:
    producer = Producer(
        env.client_config(**credentials, **{"linger.ms": 5, "message.timeout.ms": 20000})
    )
    outcomes: list[KafkaError | None] = []
    for value in values:
        producer.produce(topic, value=value, on_delivery=lambda error, _: outcomes.append(error))
    assert producer.flush(30) == 0, "records still queued after 30 s"
    return outcomes


def consume(env, topic: str, group: str, count: int, **credentials) -> list[bytes]:
    consumer = Consumer(
        env.client_config(
            **credentials,
            **{"group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False},
        )
    )
    consumer.subscribe([topic])
    values: list[bytes] = []
    deadline = time.monotonic() + TIMEOUT
    try:
        while len(values) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error():
                raise KafkaException(message.error())
            values.append(message.value())
    finally:
        consumer.close()
    return values


def authenticates(env, username: str, password: str) -> bool:
    """Whether a new client with the credential gets past SASL (it may be authorized nothing)."""
    errors: list[KafkaError] = []
    producer = Producer(env.client_config(username, password, error_cb=errors.append))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        producer.poll(0.2)
        if any(error.code() == KafkaError._AUTHENTICATION for error in errors):
            return False
        try:
            producer.list_topics(timeout=1)
        except KafkaException:
            continue
        return True
    raise TimeoutError(f"no answer to {username}'s authentication: {errors}")


def acl_rules(emulator, username: str) -> set[tuple]:
    return {
        (b.restype, b.name, b.resource_pattern_type, b.host, b.operation, b.permission_type.name)
        for b in emulator.broker.acls(username)
    }


def expected_rules(prefix: str, rules=SERVERLESS_ACLS) -> set[tuple]:
    types = {
        "topic": ResourceType.TOPIC,
        "group": ResourceType.GROUP,
        "transactionalId": ResourceType.TRANSACTIONAL_ID,
    }
    operations = {
        "Describe": AclOperation.DESCRIBE,
        "DescribeConfigs": AclOperation.DESCRIBE_CONFIGS,
        "Read": AclOperation.READ,
        "Write": AclOperation.WRITE,
        "Delete": AclOperation.DELETE,
    }
    return {
        (types[kind], prefix, ResourcePatternType.PREFIXED, "*", operations[op], "ALLOW")
        for kind, ops in rules
        for op in ops
    }


@pytest.fixture
def tenant(kube, strimzi_emulator_on_kafka):
    """A namespace, a prefix, a user name and a password of their own."""
    tag = uuid.uuid4().hex[:8]
    return {
        "namespace": new_namespace(kube),
        "prefix": f"c{tag}.",
        "user": f"c{tag}-app",
        "password": uuid.uuid4().hex,
    }


# Tests ------------------------------------------------------------------------------------


def test_a_user_works_within_its_prefix_and_is_denied_outside_it(
    kube, kafka_environment, strimzi_emulator_on_kafka, tenant
):
    env, emulator = kafka_environment, strimzi_emulator_on_kafka
    namespace, prefix, user = tenant["namespace"], tenant["prefix"], tenant["user"]
    credentials = {"username": user, "password": tenant["password"]}
    topic = f"{prefix}orders"
    config = {"retention.ms": "3600000", "cleanup.policy": "delete"}
    create_topic(kube, namespace, "orders", topic, 3, config)
    create_user(kube, namespace, user, tenant["password"], prefix_acls(prefix), QUOTAS)
    outside = f"other-{uuid.uuid4().hex[:8]}"
    admin = env.admin_client()  # kept referenced while its futures are pending
    admin.create_topics([NewTopic(outside, 1, 1)])[outside].result(timeout=30)

    kafka_topic = ready(kube, namespace, "kafkatopics", "orders")
    described = emulator.broker.describe_topic(topic)
    assert kafka_topic["status"]["topicName"] == topic
    assert kafka_topic["status"]["topicId"] == str(described.topic_id)
    assert len(described.partitions) == 3
    assert all(len(partition.replicas) == 1 for partition in described.partitions)
    assert emulator.broker.topic_config(topic) == config

    # Ready is written once the broker has the credential and the ACLs.
    kafka_user = ready(kube, namespace, "kafkausers", user)
    assert kafka_user["status"]["username"] == user
    assert acl_rules(emulator, user) == expected_rules(prefix)
    assert emulator.user_quotas(user) == {
        "producer_byte_rate": 1048576.0,
        "consumer_byte_rate": 2097152.0,
        "request_percentage": 25.0,
        "controller_mutation_rate": 5.0,
    }

    values = [f"record {index}".encode() for index in range(10)]
    assert produce(env, topic, values, **credentials) == [None] * len(values)
    assert sorted(consume(env, topic, f"{prefix}readers", len(values), **credentials)) == sorted(
        values
    )

    denied = produce(env, outside, [b"not mine"], **credentials)
    assert denied[0] is not None
    assert denied[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, denied[0]
    admin.delete_topics([outside])[outside].result(timeout=30)


def test_spec_changes_reach_the_broker_and_refusals_are_not_ready(
    kube, kafka_environment, strimzi_emulator_on_kafka, tenant
):
    env, emulator = kafka_environment, strimzi_emulator_on_kafka
    namespace, prefix, user = tenant["namespace"], tenant["prefix"], tenant["user"]
    topic = f"{prefix}events"
    create_topic(kube, namespace, "events", topic, 1, {"retention.ms": "3600000"})
    create_user(kube, namespace, user, tenant["password"], prefix_acls(prefix), QUOTAS)
    ready(kube, namespace, "kafkatopics", "events")
    ready(kube, namespace, "kafkausers", user)

    # More partitions and other configs; a key the spec drops goes back to the default.
    config = {"max.message.bytes": "2000000", "segment.ms": "600000"}
    patch_spec(kube, namespace, "kafkatopics", "events", {"partitions": 4, "config": config})
    ready(kube, namespace, "kafkatopics", "events")
    assert len(emulator.broker.describe_topic(topic).partitions) == 4
    replaced = custom(kube).get_namespaced_custom_object(
        GROUP, VERSION, namespace, "kafkatopics", "events"
    )
    replaced["spec"]["config"] = config  # a merge patch cannot drop retention.ms
    custom(kube).replace_namespaced_custom_object(
        GROUP, VERSION, namespace, "kafkatopics", "events", replaced
    )
    ready(kube, namespace, "kafkatopics", "events")
    assert emulator.broker.topic_config(topic) == config

    # What Kafka refuses is reported as the topic operator reports it.
    patch_spec(kube, namespace, "kafkatopics", "events", {"config": {"retention.ms": "soon"}})
    condition = settled(kube, namespace, "kafkatopics", "events")
    assert (condition["type"], condition["reason"]) == ("NotReady", "KafkaError"), condition
    assert "retention.ms" in condition["message"]
    patch_spec(
        kube,
        namespace,
        "kafkatopics",
        "events",
        {"partitions": 2, "config": {"retention.ms": "3600000"}},
    )
    condition = settled(kube, namespace, "kafkatopics", "events")
    assert (condition["type"], condition["reason"]) == ("NotReady", "NotSupported"), condition
    assert len(emulator.broker.describe_topic(topic).partitions) == 4

    # The user's ACLs become exactly the new spec's; a quota the spec drops is removed.
    rules = [("topic", ["Describe", "Read"]), ("group", ["Read"])]
    user_object = custom(kube).get_namespaced_custom_object(
        GROUP, VERSION, namespace, "kafkausers", user
    )
    user_object["spec"]["authorization"]["acls"] = prefix_acls(prefix, rules)
    user_object["spec"]["quotas"] = {"producerByteRate": 4096, "consumerByteRate": 8192}
    custom(kube).replace_namespaced_custom_object(
        GROUP, VERSION, namespace, "kafkausers", user, user_object
    )
    ready(kube, namespace, "kafkausers", user)
    assert acl_rules(emulator, user) == expected_rules(prefix, rules)
    assert emulator.user_quotas(user) == {
        "producer_byte_rate": 4096.0,
        "consumer_byte_rate": 8192.0,
    }
    denied = produce(env, topic, [b"read only now"], username=user, password=tenant["password"])
    assert denied[0] is not None
    assert denied[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, denied[0]

    # Handling everything again changes nothing.
    before = emulator.broker.acls(user)
    emulator.set_mode("ready")
    ready(kube, namespace, "kafkausers", user)
    assert emulator.broker.acls(user) == before
    assert authenticates(env, user, tenant["password"])


def test_deleting_the_user_revokes_its_credential_acls_and_quotas(
    kube, kafka_environment, strimzi_emulator_on_kafka, tenant
):
    env, emulator = kafka_environment, strimzi_emulator_on_kafka
    namespace, prefix, user = tenant["namespace"], tenant["prefix"], tenant["user"]
    create_user(kube, namespace, user, tenant["password"], prefix_acls(prefix), QUOTAS)
    ready(kube, namespace, "kafkausers", user)
    assert authenticates(env, user, tenant["password"])
    assert not authenticates(env, user, "not-the-password")

    custom(kube).delete_namespaced_custom_object(GROUP, VERSION, namespace, "kafkausers", user)
    poll(
        lambda: not authenticates(env, user, tenant["password"]),
        what=f"the credential of {user} to be refused",
    )
    poll(lambda: not emulator.broker.acls(user), what=f"the ACLs of {user} to go")
    poll(lambda: emulator.user_quotas(user) == {}, what=f"the quotas of {user} to go")


def test_deleting_the_topic_deletes_it_on_the_broker_first(kube, strimzi_emulator_on_kafka, tenant):
    emulator = strimzi_emulator_on_kafka
    namespace, prefix = tenant["namespace"], tenant["prefix"]
    topic = f"{prefix}gone"
    create_topic(kube, namespace, "gone", topic, 2, {})
    ready(kube, namespace, "kafkatopics", "gone")
    assert emulator.broker.describe_topic(topic) is not None

    custom(kube).delete_namespaced_custom_object(GROUP, VERSION, namespace, "kafkatopics", "gone")
    # The finalizer is removed only once the broker has deleted the topic.
    poll(
        lambda: read(kube, namespace, "kafkatopics", "gone") is None,
        what="the KafkaTopic to be deleted",
    )
    assert emulator.broker.describe_topic(topic) is None
