"""The Kafka test environment is the real thing: a KRaft broker that authenticates with
SASL/SCRAM and authorizes with ACLs, whose JMX exporter publishes Strimzi's metric names, and a
Prometheus that scrapes it; a broker restart keeps the data and resets the counters."""

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from tests.support.kafkaenv import KafkaTestEnvironment, kafka_versions
from tests.support.services import wait_for

pytestmark = pytest.mark.kafka

PARTITIONS = 3
RECORDS = 40
# Known sizes: record i carries 100 + 37 * i bytes, on partition i % PARTITIONS.
VALUES = [bytes([65 + i % 26]) * (100 + 37 * i) for i in range(RECORDS)]
BYTES_IN = 'kafka_server_brokertopicmetrics_bytesin_total{{topic="{topic}"}}'
LOG_SIZE = 'kafka_log_log_size{{topic="{topic}"}}'


def new_topic(env, partitions: int = PARTITIONS) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    admin = env.admin_client()  # kept referenced: a collected client cancels its futures
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    futures[name].result(timeout=30)
    return name


def produce(env, topic: str, values: list[bytes], **credentials) -> list[KafkaError | None]:
    """Send each value to partition index % PARTITIONS; the delivery error of each (None when
    it was written)."""
    producer = Producer(
        env.client_config(**credentials, **{"linger.ms": 5, "message.timeout.ms": 20000})
    )
    outcomes: list[KafkaError | None] = []
    for index, value in enumerate(values):
        producer.produce(
            topic,
            value=value,
            partition=index % PARTITIONS,
            on_delivery=lambda error, message: outcomes.append(error),
        )
    assert producer.flush(30) == 0, "records still queued after 30 s"
    assert len(outcomes) == len(values)
    return outcomes


def consume(env, topic: str, count: int, timeout: float = 60) -> list[bytes]:
    consumer = Consumer(
        env.client_config(
            **{
                "group.id": f"g-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
    )
    consumer.subscribe([topic])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
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


def samples(env, expr: str) -> dict[str, float]:
    """The latest value of each series of an instant query, by its partition (or "")."""
    return {
        series["metric"].get("partition", ""): float(series["value"][1])
        for series in env.query(expr)
    }


def poll(probe, *, timeout: float = 30, what: str):
    """Call probe() until it returns something truthy (bounded in time); return that."""
    found = []
    wait_for(lambda: found.append(probe()) or found[-1], timeout=timeout, what=what)
    return found[-1]


def test_records_round_trip_over_sasl_scram(kafka_environment):
    env = kafka_environment
    topic = new_topic(env)
    assert produce(env, topic, VALUES) == [None] * RECORDS
    assert sorted(consume(env, topic, RECORDS)) == sorted(VALUES)


def test_the_broker_is_the_pinned_release_in_kraft_mode(kafka_environment):
    env = kafka_environment
    version = kafka_versions()["KAFKA_VERSION"]
    assert version.startswith("4.")
    assert f"Kafka version: {version}" in env.broker.log_path.read_text(errors="replace")
    # Strimzi's rule for the KRaft metrics: the one node is the quorum's leader.
    leader = poll(
        lambda: env.query('kafka_server_raftmetrics_current_state{current_state="leader"}'),
        what="the KRaft state in Prometheus",
    )
    assert float(leader[0]["value"][1]) == 1
    assert list(env.admin_client().list_topics(timeout=10).brokers) == [1]


def test_a_wrong_password_is_refused(kafka_environment):
    env = kafka_environment
    errors: list[KafkaError] = []
    producer = Producer(
        env.client_config(env.admin_username, "not-the-password", error_cb=errors.append)
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        producer.poll(0.5)
        if any(error.code() == KafkaError._AUTHENTICATION for error in errors):
            break
    assert any(error.code() == KafkaError._AUTHENTICATION for error in errors), errors


def test_a_user_without_acls_is_denied_until_granted(kafka_environment):
    env = kafka_environment
    topic = new_topic(env)
    user, password = f"tenant-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    env.create_scram_user(user, password)

    denied = produce(env, topic, [b"denied"], username=user, password=password)
    assert denied[0] is not None
    assert denied[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, denied[0]

    admin = env.admin_client()
    binding = AclBinding(
        ResourceType.TOPIC,
        topic,
        ResourcePatternType.LITERAL,
        f"User:{user}",
        "*",
        AclOperation.WRITE,
        AclPermissionType.ALLOW,
    )
    admin.create_acls([binding])[binding].result(timeout=30)
    match = AclBindingFilter(
        ResourceType.TOPIC,
        topic,
        ResourcePatternType.LITERAL,
        f"User:{user}",
        None,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    # DescribeAcls is answered by the broker's authorizer: once it lists the ACL, it applies it.
    poll(lambda: admin.describe_acls(match).result(timeout=10), what="the new ACL")
    assert produce(env, topic, [b"allowed"], username=user, password=password) == [None]


def test_prometheus_has_the_topics_bytes_in_and_log_sizes(kafka_environment):
    env = kafka_environment
    topic = new_topic(env)
    assert produce(env, topic, VALUES) == [None] * RECORDS
    payload = sum(map(len, VALUES))

    bytes_in = poll(
        lambda: samples(env, BYTES_IN.format(topic=topic)).get(""),
        what=f"bytes in of {topic} in Prometheus",
    )
    # Record batches: the values plus a few bytes of framing per record and per batch.
    assert payload <= bytes_in <= payload + 100 * RECORDS

    def log_sizes():
        sizes = samples(env, LOG_SIZE.format(topic=topic))
        return sizes if sum(sizes.values()) >= payload else None

    sizes = poll(log_sizes, what=f"log sizes of {topic} in Prometheus")
    assert set(sizes) == {str(partition) for partition in range(PARTITIONS)}
    assert all(size > 0 for size in sizes.values())
    # The broker stores the batches it received: the log holds exactly the bytes that came in.
    assert sum(sizes.values()) == bytes_in


@pytest.fixture
def own_kafka_environment():
    """A broker and Prometheus of this test's own: its restart does not stop the session's
    broker under the other tests, nor inherit what they left on it."""
    with KafkaTestEnvironment() as environment:
        yield environment


def test_a_broker_restart_keeps_the_data_and_resets_the_counters(own_kafka_environment):
    env = own_kafka_environment
    topic = new_topic(env)
    assert produce(env, topic, VALUES) == [None] * RECORDS
    payload = sum(map(len, VALUES))

    def bytes_in_at_least(least: float, since: float = 0):
        expr = BYTES_IN.format(topic=topic)
        stamps = env.query(f"timestamp({expr})")
        if not stamps or float(stamps[0]["value"][1]) <= since:
            return None  # no sample yet, or only ones from before `since`
        value = samples(env, expr).get("")
        return value if value is not None and value >= least else None

    before = poll(lambda: bytes_in_at_least(payload), what=f"bytes in of {topic}")
    size_before = sum(samples(env, LOG_SIZE.format(topic=topic)).values())
    assert size_before >= payload

    env.restart_broker()
    restarted = time.time()

    assert sorted(consume(env, topic, RECORDS)) == sorted(VALUES)
    assert produce(env, topic, [b"after the restart"]) == [None]

    after = poll(
        lambda: bytes_in_at_least(1, since=restarted),
        what=f"bytes in of {topic} after the restart",
    )
    assert after < before, "the counter starts again from zero after a restart"
    resets = env.query(f"resets({BYTES_IN.format(topic=topic)}[5m])")
    assert resets
    assert float(resets[0]["value"][1]) >= 1
    # Storage is a gauge of what is on disk: the restart lost none of it.
    poll(
        lambda: (
            sum(samples(env, LOG_SIZE.format(topic=topic)).values())
            >= size_before + len(b"after the restart")
        ),
        what=f"log sizes of {topic} to include the records from before the restart",
    )
