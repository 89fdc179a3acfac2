"""Metering end to end, on the real thing: a serverless cluster created through the API on a
cell whose shared Kafka is the test broker (the Strimzi emulator applies its topic and
credential to it), a real Kafka client writing and reading with the tenant's credential, a
broker restart in the middle, and the ledger (and the usage API) equal to the broker's own
counters."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, Producer
from django.utils import timezone

from billing import metering
from billing.models import UsageHour
from clusters.models import Cluster, Dimension
from tests.billing.test_metering import BYTES_IN, BYTES_OUT, wait_until_scraped
from tests.factories import UserFactory, make_org
from tests.support.clients import session_client
from tests.support.shared_kafka import converge, make_shared_kafka_cell, tenant_config

pytestmark = [pytest.mark.kube, pytest.mark.kafka, pytest.mark.django_db]


@pytest.fixture
def cell(kube, kafka_environment, strimzi_emulator_on_kafka, settings):
    settings.SLUICE_DATAPLANE_DRIVER = "kubernetes"
    return make_shared_kafka_cell(kube, kafka_environment, strimzi_emulator_on_kafka)


def produce(env, credential: dict, topic: str, count: int, size: int) -> None:
    producer = Producer(tenant_config(credential, **{"message.timeout.ms": 30000}))
    errors = []
    for index in range(count):
        producer.produce(
            topic,
            value=bytes([97 + index % 26]) * size,
            on_delivery=lambda error, message: error and errors.append(error),
        )
    assert producer.flush(30) == 0
    assert errors == []


def consume(env, credential: dict, topic: str, group: str, count: int) -> None:
    consumer = Consumer(
        tenant_config(credential, **{"group.id": group, "auto.offset.reset": "earliest"})
    )
    consumer.subscribe([topic])
    seen = 0
    try:
        for _ in range(240):  # bounded: at most 2 minutes
            message = consumer.poll(0.5)
            if message is not None:
                assert message.error() is None, message.error()
                seen += 1
            if seen >= count:
                break
    finally:
        consumer.close()
    assert seen == count


def ledger(cluster: Cluster) -> list[tuple]:
    return list(
        UsageHour.unscoped_all_tenants.filter(cluster=cluster)
        .order_by("dimension", "hour")
        .values_list("dimension", "hour", "quantity", "complete", "computed_at")
    )


def total(cluster: Cluster, dimension: str) -> int:
    return sum(
        UsageHour.unscoped_all_tenants.filter(cluster=cluster, dimension=dimension).values_list(
            "quantity", flat=True
        )
    )


def test_a_tenants_traffic_lands_in_the_ledger_exactly_once(kafka_environment, cell):
    env = kafka_environment
    owner = UserFactory()
    organization = make_org(owner=owner, name="Metered Corp")
    api = session_client(owner)
    base = f"/api/v1/orgs/{organization.public_id}/clusters/"

    created = api.post(
        base, {"name": "events", "type": "serverless", "region": "eu-west-1"}, format="json"
    )
    assert created.status_code == 202, created.json()
    cluster_id = created.json()["cluster"]["id"]
    topic = api.post(
        f"{base}{cluster_id}/topics/", {"name": "orders", "partitions": 3}, format="json"
    )
    assert topic.status_code == 202, topic.json()
    kafka_topic = topic.json()["topic"]["kafka_name"]
    answer = api.post(f"{base}{cluster_id}/credentials/", {"name": "app"}, format="json")
    assert answer.status_code == 202, answer.json()
    credential = answer.json()["credential"]
    cluster = converge(cluster_id)
    details = api.get(f"{base}{cluster_id}/").json()
    assert details["bootstrap_servers"] == env.bootstrap_servers
    credential = {**credential, "connection": details["connection"]}
    # The cell's shared Kafka listener has no TLS, and the snippet says so.
    assert details["connection"]["security_protocol"] == "SASL_PLAINTEXT"
    prefix = details["connection"]["name_prefix"]

    # Before a broker restart, then after it: more after, so the new counter passes the old.
    produce(env, credential, kafka_topic, 40, 500)
    in_before = wait_until_scraped(env, BYTES_IN, kafka_topic)
    env.restart_broker()
    produce(env, credential, kafka_topic, 100, 500)
    consume(env, credential, kafka_topic, f"{prefix}readers-{uuid.uuid4().hex[:6]}", 140)
    in_after = wait_until_scraped(env, BYTES_IN, kafka_topic)
    out_after = wait_until_scraped(env, BYTES_OUT, kafka_topic)
    assert in_after > in_before

    now = timezone.now()
    metering.collect_cell(cell, now=now)
    assert total(cluster, Dimension.INGRESS_BYTES) == in_before + in_after
    assert total(cluster, Dimension.EGRESS_BYTES) == out_after
    assert min(row[2] for row in ledger(cluster)) >= 0
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    rows = {
        row.dimension: row
        for row in UsageHour.unscoped_all_tenants.filter(cluster=cluster, hour=this_hour)
    }
    assert rows[Dimension.PARTITION_HOURS].quantity == 3
    assert rows[Dimension.STORAGE_BYTE_HOURS].quantity > 0
    assert not rows[Dimension.INGRESS_BYTES].complete  # the hour is still going on

    once = ledger(cluster)
    metering.collect_cell(cell, now=now)  # the collector and rollup again: nothing changes
    assert ledger(cluster) == once

    usage = api.get(f"{base}{cluster_id}/usage/", {"granularity": "hour"})
    assert usage.status_code == 200
    by_dimension = {d["dimension"]: d for d in usage.json()["dimensions"]}
    ingress = by_dimension[Dimension.INGRESS_BYTES]
    assert sum(b["quantity"] for b in ingress["buckets"]) == in_before + in_after
    assert ingress["limit_per_bucket"] > 0
