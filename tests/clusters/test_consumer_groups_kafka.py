"""Consumer groups on the real thing: a serverless cluster made through the API on a cell whose
shared Kafka is the Kafka test broker (the Strimzi emulator applies the KafkaUsers, Sluice's own
principals among them, to the broker). A tenant's consumer makes a group; the API shows its
state, members and lag, refuses to reset it while it has a consumer, resets it once inactive
(audited), and Sluice's observer can neither commit offsets nor see another tenant's group.
And the Python connection snippet, run as a user would run it, sends a record there."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from clusters import naming, snippets
from clusters.models import Cluster
from foundation import secretbox
from tenants.models import AuditEvent
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, make_org
from tests.support.clients import session_client
from tests.support.services import wait_for
from tests.support.shared_kafka import converge, make_shared_kafka_cell, tenant_config

pytestmark = [pytest.mark.kube, pytest.mark.kafka, pytest.mark.django_db]


@pytest.fixture
def cell(kube, kafka_environment, strimzi_emulator_on_kafka, settings):
    settings.SLUICE_DATAPLANE_DRIVER = "kubernetes"
    return make_shared_kafka_cell(kube, kafka_environment, strimzi_emulator_on_kafka)


def produce(config: dict, topic: str, count: int) -> None:
    producer = Producer(config)
    for number in range(count):
        producer.produce(topic, key=str(number).encode(), value=b"x", partition=number % 2)
    assert producer.flush(30) == 0


def consume(config: dict, group: str, topic: str, count: int) -> Consumer:
    """A consumer of ``group`` that has read and committed ``count`` records; still open."""
    consumer = Consumer(
        {**config, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False}
    )
    consumer.subscribe([topic])
    seen = 0
    deadline = time.monotonic() + 60
    while seen < count and time.monotonic() < deadline:
        for message in consumer.consume(100, timeout=1):
            assert message.error() is None, message.error()
            seen += 1
    assert seen == count
    consumer.commit(asynchronous=False)
    return consumer


def test_a_group_with_its_lag_reset_only_when_inactive(kafka_environment, cell):
    owner = UserFactory()
    organization = make_org(owner=owner, name="Readers Inc")
    api = session_client(owner)
    base = f"/api/v1/orgs/{organization.public_id}/clusters/"
    created = api.post(
        base, {"name": "stream", "type": "serverless", "region": cell.region}, format="json"
    )
    assert created.status_code == 202, created.json()
    cluster_id = created.json()["cluster"]["id"]
    topic = api.post(
        f"{base}{cluster_id}/topics/", {"name": "events", "partitions": 2}, format="json"
    ).json()["topic"]
    credential = api.post(f"{base}{cluster_id}/credentials/", {"name": "app"}, format="json")
    credential = credential.json()["credential"]
    converge(cluster_id)
    connection = api.get(f"{base}{cluster_id}/").json()["connection"]
    config = tenant_config({**credential, "connection": connection})
    groups = f"{base}{cluster_id}/consumer-groups/"
    assert api.get(groups).json() == {"results": []}

    produce(config, topic["kafka_name"], 10)
    consumer = consume(config, f"{cluster_id}.readers", topic["kafka_name"], 10)
    produce(config, topic["kafka_name"], 6)  # 3 a partition not yet read: the lag

    def listed_as(state: str) -> bool:
        found = api.get(groups).json()["results"]
        return [(g["name"], g["state"]) for g in found] == [("readers", state)]

    wait_for(lambda: listed_as("stable"), timeout=30, what="the group, stable")
    group = api.get(f"{groups}readers/").json()
    assert group["kafka_name"] == f"{cluster_id}.readers"
    (member,) = group["members"]
    assert sorted((a["topic"], a["partition"]) for a in member["assignments"]) == [
        ("events", 0),
        ("events", 1),
    ]
    assert [(p["topic"], p["partition"], p["lag"]) for p in group["partitions"]] == [
        ("events", 0, 3),
        ("events", 1, 3),
    ]
    assert group["total_lag"] == 6
    refused = api.post(f"{groups}readers/reset-offsets/", {"to": "earliest"}, format="json")
    assert refused.status_code == 409, refused.json()
    assert "inactive" in refused.json()["detail"]

    consumer.close()  # leaves the group: it is empty, its offsets kept
    wait_for(lambda: listed_as("empty"), timeout=60, what="the group, empty")
    reset = api.post(f"{groups}readers/reset-offsets/", {"to": "earliest"}, format="json")
    assert reset.status_code == 200, reset.json()
    assert reset.json() == {
        "group": "readers",
        "offsets": [
            {"topic": "events", "partition": 0, "before": 5, "after": 0},
            {"topic": "events", "partition": 1, "before": 5, "after": 0},
        ],
    }
    group = api.get(f"{groups}readers/").json()
    assert group["state"] == "empty"
    assert group["members"] == []
    assert group["total_lag"] == 16
    with tenant_scope(organization):
        event = AuditEvent.objects.get(action="consumer_group.offsets_reset")
    assert event.after["offsets"] == {"events/0": 0, "events/1": 0}
    assert event.before["offsets"] == {"events/0": 5, "events/1": 5}

    latest = api.post(
        f"{groups}readers/reset-offsets/", {"to": "latest", "topic": "events"}, format="json"
    )
    assert [m["after"] for m in latest.json()["offsets"]] == [8, 8]
    assert api.get(f"{groups}readers/").json()["total_lag"] == 0
    assert api.get(f"{groups}nobody/").status_code == 404

    # Sluice's observer reads; it cannot move offsets, nor see a group outside the cluster's.
    cluster = Cluster.unscoped_all_tenants.get(public_id=cluster_id)
    observer = AdminClient(
        kafka_environment.client_config(
            naming.sluice_username(cluster_id, "observer"),
            secretbox.unseal(cluster.observer_password_encrypted),
        )
    )
    outsider = f"outside-{uuid.uuid4().hex[:8]}"
    consume(kafka_environment.client_config(), outsider, topic["kafka_name"], 16).close()
    listed = observer.list_consumer_groups(request_timeout=10).result(timeout=15)
    assert {g.group_id for g in listed.valid} == {f"{cluster_id}.readers"}
    move = ConsumerGroupTopicPartitions(
        f"{cluster_id}.readers", [TopicPartition(topic["kafka_name"], 0, 1)]
    )
    (future,) = observer.alter_consumer_group_offsets([move]).values()
    (refused,) = future.result(timeout=15).topic_partitions
    assert refused.error.name() == "GROUP_AUTHORIZATION_FAILED"
    assert [p["committed_offset"] for p in api.get(f"{groups}readers/").json()["partitions"]] == [
        8,
        8,
    ]


def test_the_python_snippet_sends_a_record_to_the_real_broker(kafka_environment, cell):
    owner = UserFactory()
    organization = make_org(owner=owner, name="Snippet Users")
    api = session_client(owner)
    base = f"/api/v1/orgs/{organization.public_id}/clusters/"
    created = api.post(
        base, {"name": "pasted", "type": "serverless", "region": cell.region}, format="json"
    )
    cluster_id = created.json()["cluster"]["id"]
    topic = api.post(
        f"{base}{cluster_id}/topics/", {"name": "my-topic", "partitions": 1}, format="json"
    ).json()["topic"]
    credential = api.post(f"{base}{cluster_id}/credentials/", {"name": "app"}, format="json")
    credential = credential.json()["credential"]
    cluster = converge(cluster_id)

    # As the credential's page shows it: its username and password filled in, the example topic
    # being the one just made.
    (python,) = (
        s
        for s in snippets.snippets(cluster, credential["username"], credential["password"])
        if s.key == "python"
    )
    assert f'"{topic["kafka_name"]}"' in python.text
    run = subprocess.run(
        [sys.executable, "-c", python.text], capture_output=True, text=True, timeout=90
    )
    assert run.returncode == 0, run.stderr

    connection = api.get(f"{base}{cluster_id}/").json()["connection"]
    config = tenant_config({**credential, "connection": connection})
    consumer = Consumer(
        {**config, "group.id": f"{cluster_id}.check", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic["kafka_name"]])
    try:
        received = []
        deadline = time.monotonic() + 60
        while not received and time.monotonic() < deadline:
            received = [m for m in consumer.consume(10, timeout=1) if m.error() is None]
    finally:
        consumer.close()
    assert [m.value() for m in received] == [b"hello"]
