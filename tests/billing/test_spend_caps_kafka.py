"""A spend cap on the real thing: a serverless cluster made through the API on a cell whose
shared Kafka is the Kafka test broker (the Strimzi emulator applies its KafkaUsers' quotas to
the broker), its tenant producing flat out. Metering (from the cell's real Prometheus) and the
spend check cross the cap; the reconciler lowers the principal's quotas to the floors, and the
produce rate the broker's own byte counter shows falls to the floor; the cap raised, it
recovers. Every record the broker acknowledged is then consumed: none was lost.

To cross a cap within seconds the serverless ingress price is raised to $10 per GB (1 MB costs
one cent) and the tier's ingress limit lowered to 1 MB/s (both rolled back with the test)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer

from billing import metering
from billing.models import SpendHold
from billing.spend_watch import spend_check
from clusters import reconciler
from clusters.models import MB, Cluster, ClusterState, Dimension, Tier, TierPrice
from tests.billing.test_metering import BYTES_IN, exporter_value
from tests.factories import UserFactory, make_org
from tests.support.clients import session_client
from tests.support.shared_kafka import converge, make_shared_kafka_cell, tenant_config

pytestmark = [pytest.mark.kube, pytest.mark.kafka, pytest.mark.django_db]

FLOOR = 10_240  # bytes a second: the produce floor set for this test
VALUE = b"v" * 1_000
MEASURE_SECONDS = 8
# After the floor is applied, Kafka lets a principal that was sending at its old quota finish
# what is in flight, and it measures rates over 11 one-second samples: the window must have
# passed before the rate shown is the floor's.
SETTLE_SECONDS = 12


@pytest.fixture
def priced_tier(db):
    tier = Tier.objects.get(slug="serverless")
    tier.ingress_mbps = tier.egress_mbps = 1
    tier.save()
    TierPrice.objects.filter(tier=tier, dimension=Dimension.INGRESS_BYTES).update(
        micros=10_000_000, per_units=10**9
    )
    return tier


@pytest.fixture
def cell(kube, kafka_environment, strimzi_emulator_on_kafka, settings):
    settings.SLUICE_DATAPLANE_DRIVER = "kubernetes"
    settings.SLUICE_THROTTLE_PRODUCER_BYTES_PER_SECOND = FLOOR
    return make_shared_kafka_cell(kube, kafka_environment, strimzi_emulator_on_kafka)


class FlatOut(threading.Thread):
    """Produces numbered records as fast as the broker takes them, for at most ``limit``
    seconds or until stopped; keeps the numbers the broker acknowledged."""

    def __init__(self, config: dict, topic: str, limit: float = 150) -> None:
        super().__init__(daemon=True)
        self.config, self.topic, self.limit = config, topic, limit
        self.acknowledged: set[int] = set()
        self.failed: list = []
        self.stop = threading.Event()

    def run(self) -> None:
        producer = Producer(
            {
                **self.config,
                "acks": "all",
                "linger.ms": 5,
                "batch.size": 16_384,
                "queue.buffering.max.kbytes": 256,
                "message.timeout.ms": 300_000,
            }
        )

        def delivered(error, message) -> None:
            if error is None:
                self.acknowledged.add(int(message.key()))
            else:
                self.failed.append(error)

        number = 0
        until = time.monotonic() + self.limit
        while not self.stop.is_set() and time.monotonic() < until:
            try:
                producer.produce(
                    self.topic, key=str(number).encode(), value=VALUE, on_delivery=delivered
                )
                number += 1
            except BufferError:  # the local queue is full: the broker is throttling us
                producer.poll(0.05)
            else:
                producer.poll(0)
        producer.flush(300)  # everything queued is delivered, at whatever rate
        self.sent = number


def rate(env, topic: str, seconds: float = MEASURE_SECONDS) -> float:
    """Bytes a second into ``topic`` over ``seconds``, from the broker's own counter."""
    before = exporter_value(env, BYTES_IN, topic)
    time.sleep(seconds)
    return (exporter_value(env, BYTES_IN, topic) - before) / seconds


def reconciled(cluster_id: str) -> Cluster:
    cluster = Cluster.unscoped_all_tenants.get(public_id=cluster_id)
    for _ in range(30):  # bounded
        if reconciler.reconcile(cluster.pk) == reconciler.Outcome.CONVERGED:
            break
        time.sleep(1)
    cluster.refresh_from_db()
    return cluster


def test_a_capped_tenant_slows_to_the_floor_and_recovers_without_losing_a_record(
    kafka_environment, strimzi_emulator_on_kafka, cell, priced_tier
):
    env, emulator = kafka_environment, strimzi_emulator_on_kafka
    owner = UserFactory()
    organization = make_org(owner=owner, name="Capped Corp")
    api = session_client(owner)
    base = f"/api/v1/orgs/{organization.public_id}/clusters/"
    created = api.post(
        base, {"name": "firehose", "type": "serverless", "region": cell.region}, format="json"
    )
    assert created.status_code == 202, created.json()
    cluster_id = created.json()["cluster"]["id"]
    topic = api.post(
        f"{base}{cluster_id}/topics/", {"name": "events", "partitions": 1}, format="json"
    )
    kafka_topic = topic.json()["topic"]["kafka_name"]
    credential = api.post(f"{base}{cluster_id}/credentials/", {"name": "app"}, format="json")
    credential = credential.json()["credential"]
    converge(cluster_id)
    connection = api.get(f"{base}{cluster_id}/").json()["connection"]
    config = tenant_config({**credential, "connection": connection})
    caps = f"/api/v1/orgs/{organization.public_id}/spend-caps/organization/"
    # 5 cents: 5 MB written at $10 per GB.
    assert api.put(caps, {"monthly_cap_usd": "0.05"}, format="json").status_code == 200

    producer = FlatOut(config, kafka_topic)
    producer.start()
    unthrottled = rate(env, kafka_topic, 4)
    assert unthrottled > 0.5 * MB  # the tier's 1 MB/s share, flat out

    # Metering runs (a minute apart in production, back to back here) until the cap is reached.
    started = time.monotonic()
    for _ in range(60):  # bounded: about two minutes
        metering.collect_cell(cell)
        if spend_check().holds_changed:
            break
        time.sleep(1)
    hold = SpendHold.unscoped_all_tenants.get(organization=organization, lifted_at__isnull=True)
    assert hold.spend_micros >= 50_000
    cluster = reconciled(cluster_id)
    assert cluster.state == ClusterState.THROTTLED
    reached_in = time.monotonic() - started
    on_broker = emulator.user_quotas(credential["username"])
    assert on_broker["producer_byte_rate"] == FLOOR  # one broker: the whole floor
    assert reached_in < 60, "throttled within one metering period of crossing the cap"

    time.sleep(SETTLE_SECONDS)
    throttled = rate(env, kafka_topic)
    # Kafka may let a burst through as the window moves: at most twice the floor on average.
    assert throttled <= 2 * FLOOR, (throttled, unthrottled)
    body = api.get(f"{base}{cluster_id}/").json()
    assert body["state"] == "throttled"
    assert "spend cap of $0.05" in body["throttle"]["reason"]

    # Raised: the hold is lifted at once, the principal's own share comes back.
    assert api.put(caps, {"monthly_cap_usd": "100"}, format="json").status_code == 200
    cluster = reconciled(cluster_id)
    assert cluster.state == ClusterState.READY
    assert emulator.user_quotas(credential["username"])["producer_byte_rate"] == MB
    lifted = time.monotonic()
    series = []
    for _ in range(40):  # bounded: 160 s
        series.append(rate(env, kafka_topic, 4))
        if series[-1] > 0.5 * MB:
            break
    recovered, recovered_in = series[-1], time.monotonic() - lifted
    print("after the lift:", [round(r) for r in series])
    assert recovered > 0.5 * MB, series

    producer.stop.set()
    producer.join(timeout=320)
    assert not producer.is_alive()
    assert producer.failed == []
    assert len(producer.acknowledged) == producer.sent

    # No record lost: everything the broker acknowledged is there to read.
    consumer = Consumer(
        {
            **config,
            "group.id": f"{connection['name_prefix']}check-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([kafka_topic])
    seen: set[int] = set()
    deadline = time.monotonic() + 180
    try:
        while len(seen) < len(producer.acknowledged) and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=1):
                assert message.error() is None, message.error()
                seen.add(int(message.key()))
    finally:
        consumer.close()
    assert seen == producer.acknowledged
    print(
        f"spend cap on the broker: {unthrottled / MB:.2f} MB/s flat out, "
        f"{throttled:.0f} B/s throttled (floor {FLOOR}), {recovered / MB:.2f} MB/s "
        f"{recovered_in:.0f}s after the cap was raised; cap reached {reached_in:.1f}s after "
        "metering began; "
        f"{len(seen)} records, none lost"
    )
