"""Metering runs: partition-hours from Sluice's topic records, the watermark that closes hours,
and, against the real broker and Prometheus of the Kafka test environment, bytes in and out in
the ledger equal to the broker's own counters, through a restart and repeated or concurrent
runs."""

from __future__ import annotations

import re
import threading
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewTopic
from django.db import connection
from django.utils import timezone

from billing import attribution, metering, prometheus
from billing.deltas import HOUR, Window
from billing.models import MeteringCursor, UsageHour
from clusters import services as cluster_services
from clusters.models import Cell, Cluster, Dimension, Topic, TopicPartitions
from clusters.naming import serverless_prefix
from tenants.audit import Actor
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, make_cluster, make_org
from tests.support.services import wait_for

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 2, 12, tzinfo=UTC)
ACTOR = Actor(system="tests")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def new_cluster(*, created: datetime | None = None, name: str = "events") -> Cluster:
    cluster, _ = make_cluster(make_org(owner=UserFactory()), name=name)
    if created is not None:
        Cluster.unscoped_all_tenants.filter(pk=cluster.pk).update(created_at=created)
        cluster.refresh_from_db()
    return cluster


def add_topic(cluster: Cluster, name: str, partitions: int, *, created: datetime | None = None):
    with tenant_scope(cluster.organization):
        topic, _ = cluster_services.topic_create(
            cluster=cluster, actor=ACTOR, name=name, partitions=partitions
        )
    if created is not None:
        Topic.unscoped_all_tenants.filter(pk=topic.pk).update(created_at=created)
        TopicPartitions.unscoped_all_tenants.filter(topic=topic).update(since=created)
    return topic


def grow(topic: Topic, partitions: int, *, when: datetime) -> None:
    with tenant_scope(topic.organization):
        cluster_services.topic_update(topic=topic, actor=ACTOR, partitions=partitions)
    latest = TopicPartitions.unscoped_all_tenants.filter(topic=topic).latest("id")
    TopicPartitions.unscoped_all_tenants.filter(pk=latest.pk).update(since=when)


def rows(cluster: Cluster, dimension: str) -> dict[datetime, tuple[int, bool]]:
    return {
        row.hour: (row.quantity, row.complete)
        for row in UsageHour.unscoped_all_tenants.filter(cluster=cluster, dimension=dimension)
    }


# Partition-hours and the watermark (no Prometheus: a cell that is not metered still gets them)


def test_partition_hours_follow_the_record_of_topics():
    cluster = new_cluster(created=at(-180))
    shrinking = add_topic(cluster, "orders", 3, created=at(30))
    grow(shrinking, 6, when=at(70))
    Topic.unscoped_all_tenants.filter(pk=shrinking.pk).update(deleted_at=at(140))
    add_topic(cluster, "payments", 2, created=T0)
    window = Window(int(T0.timestamp()), at(240).timestamp())
    hours = metering.partition_hours(
        [c for c in attribution.metered_clusters(cluster.cell, window) if c.pk == cluster.pk],
        window,
    )
    start = int(T0.timestamp())
    assert hours == {
        (cluster.pk, start): 3 + 2,  # orders from 12:30, payments from 12:00
        (cluster.pk, start + HOUR): 6 + 2,  # grown at 13:10: the hour saw 6
        (cluster.pk, start + 2 * HOUR): 6 + 2,  # deleted at 14:20: it existed in the hour
        (cluster.pk, start + 3 * HOUR): 2,
    }


def test_the_watermark_closes_hours_and_reopening_recomputes_them(settings):
    settings.SLUICE_METERING_LATENESS_SECONDS = 300
    cluster = new_cluster(created=at(-10))
    topic = add_topic(cluster, "orders", 4, created=at(-10))
    cell = cluster.cell
    assert not cell.prometheus_url

    first = metering.collect_cell(cell, now=at(80))
    assert first.watermark == at(75)
    assert rows(cluster, Dimension.PARTITION_HOURS) == {
        at(-60): (4, True),
        at(0): (4, True),
        at(60): (4, False),  # still going on
    }
    # Nothing but partition-hours from a cell without Prometheus (and no time dimension: a
    # Serverless tier is not priced by the hour): not measured is not zero.
    assert set(UsageHour.unscoped_all_tenants.values_list("dimension", flat=True)) == {
        Dimension.PARTITION_HOURS
    }
    closed = UsageHour.unscoped_all_tenants.get(cluster=cluster, hour=at(0))

    grow(topic, 8, when=at(90))
    second = metering.collect_cell(cell, now=at(130))
    assert second.window.start == at(60).timestamp()  # from the watermark's hour on
    assert rows(cluster, Dimension.PARTITION_HOURS) == {
        at(-60): (4, True),
        at(0): (4, True),
        at(60): (8, True),
        at(120): (8, False),
    }
    assert UsageHour.unscoped_all_tenants.get(pk=closed.pk).computed_at == closed.computed_at

    # The record says the topic had 8 partitions from 12:50 after all (a late correction):
    # closed hours stay as they are until the cell is reopened from before it.
    TopicPartitions.unscoped_all_tenants.filter(topic=topic, partitions=8).update(since=at(50))
    metering.collect_cell(cell, now=at(131))
    assert rows(cluster, Dimension.PARTITION_HOURS)[at(0)] == (4, True)
    assert metering.reopen(cell, at(-30)).watermark == at(-30)
    metering.reopen(cell, at(100))  # never forward
    assert MeteringCursor.objects.get(cell=cell).watermark == at(-30)
    metering.collect_cell(cell, now=at(132))
    assert rows(cluster, Dimension.PARTITION_HOURS)[at(0)] == (8, True)

    # A run whose data ends before the watermark's hour changes nothing.
    assert metering.collect_cell(cell, now=at(30)).written == 0
    assert rows(cluster, Dimension.PARTITION_HOURS)[at(60)] == (8, True)


def test_operators_see_the_watermark_and_can_reopen_a_cell(client):
    cluster = new_cluster(created=timezone.now() - timedelta(hours=3))
    run = metering.collect_cell(cluster.cell)
    cursor = MeteringCursor.objects.get(cell=cluster.cell)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get("/admin/billing/meteringcursor/").content.decode()
    assert cluster.cell.slug in page
    response = client.post(
        "/admin/billing/meteringcursor/",
        {"action": "reopen_last_day", "_selected_action": [cursor.pk]},
        follow=True,
    )
    assert "reopened" in response.content.decode()
    cursor.refresh_from_db()
    assert cursor.watermark < run.watermark - timedelta(hours=20)


# Against the real broker and Prometheus ------------------------------------------------------

BYTES_IN = "kafka_server_brokertopicmetrics_bytesin_total"
BYTES_OUT = "kafka_server_brokertopicmetrics_bytesout_total"


@pytest.fixture
def metered_cell(kafka_environment):
    cluster = new_cluster()  # places into the factories' cell
    cell = cluster.cell
    Cell.objects.filter(pk=cell.pk).update(prometheus_url=kafka_environment.prometheus_url)
    cell.refresh_from_db()
    # Only what this test's clusters use (the ledger and cursor are per test anyway).
    MeteringCursor.objects.filter(cell=cell).delete()
    return cell, cluster


def exporter_value(env, metric: str, topic: str) -> int:
    """The broker's own counter, read from its exporter (what Prometheus scrapes)."""
    with urllib.request.urlopen(env.exporter_url, timeout=10) as response:  # noqa: S310
        text = response.read().decode()
    pattern = re.compile(rf'^{metric}{{[^}}]*topic="{re.escape(topic)}"[^}}]*}} (\S+)$', re.M)
    return sum(int(float(value)) for value in pattern.findall(text))


def scraped(env, metric: str, topic: str) -> int:
    return sum(int(float(s["value"][1])) for s in env.query(f'{metric}{{topic="{topic}"}}'))


def wait_until_scraped(env, metric: str, topic: str) -> int:
    """Wait until Prometheus holds the counter's current value; return it."""
    found = []

    def caught_up() -> bool:
        found[:] = [exporter_value(env, metric, topic)]
        return found[0] > 0 and scraped(env, metric, topic) == found[0]

    wait_for(caught_up, timeout=30, what=f"Prometheus to scrape {metric} of {topic}")
    return found[0]


def wait_until_stored(env, topic: str) -> None:
    """Wait until Prometheus holds a non-empty log size of the topic followed by a later sample:
    a size counts from its sample to the next one, so a size seen by one scrape only is held
    for no time yet."""

    def held_for_a_while() -> bool:
        for series in env.query(f'kafka_log_log_size{{topic="{topic}"}}[1m]'):
            sizes = [float(value) for _at, value in series["values"]]
            if any(size > 0 for size in sizes[:-1]):
                return True
        return False

    wait_for(held_for_a_while, timeout=30, what=f"two samples of {topic}'s stored size")


def kafka_topic(env, cluster: Cluster, name: str, partitions: int) -> str:
    add_topic(cluster, name, partitions)
    full = f"{serverless_prefix(cluster.public_id)}{name}"
    admin = env.admin_client()
    admin.create_topics([NewTopic(full, num_partitions=partitions, replication_factor=1)])[
        full
    ].result(timeout=30)
    return full


def produce(env, topic: str, count: int, size: int) -> None:
    producer = Producer(env.client_config(**{"linger.ms": 5, "message.timeout.ms": 30000}))
    for index in range(count):
        producer.produce(topic, value=bytes([65 + index % 26]) * size)
    assert producer.flush(30) == 0


def consume(env, topic: str, count: int) -> None:
    consumer = Consumer(
        env.client_config(
            **{"group.id": f"g-{uuid.uuid4().hex[:8]}", "auto.offset.reset": "earliest"}
        )
    )
    consumer.subscribe([topic])
    seen = 0
    try:
        for _ in range(240):  # bounded: at most 2 minutes
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                seen += 1
            if seen >= count:
                break
        consumer.commit(asynchronous=False)  # writes __consumer_offsets: internal, not billed
    finally:
        consumer.close()
    assert seen == count


def total(cluster: Cluster, dimension: str) -> int:
    return sum(quantity for quantity, _ in rows(cluster, dimension).values())


def ledger() -> list[tuple]:
    return list(
        UsageHour.unscoped_all_tenants.order_by("cluster_id", "dimension", "hour").values_list(
            "cluster_id", "dimension", "hour", "quantity", "complete", "computed_at"
        )
    )


@pytest.mark.kafka
def test_ledger_bytes_equal_the_brokers_counters(kafka_environment, metered_cell):
    env = kafka_environment
    cell, cluster = metered_cell
    other = new_cluster(name="other")
    orders = kafka_topic(env, cluster, "orders", 3)
    elsewhere = kafka_topic(env, other, "orders", 1)
    produce(env, orders, 120, 700)
    produce(env, elsewhere, 10, 50)
    consume(env, orders, 120)
    counted_in = wait_until_scraped(env, BYTES_IN, orders)
    counted_out = wait_until_scraped(env, BYTES_OUT, orders)
    other_in = wait_until_scraped(env, BYTES_IN, elsewhere)
    wait_until_stored(env, orders)

    now = timezone.now()
    metering.collect_cell(cell, now=now)

    assert total(cluster, Dimension.INGRESS_BYTES) == counted_in > 120 * 700
    assert total(cluster, Dimension.EGRESS_BYTES) == counted_out > 120 * 700
    assert total(other, Dimension.INGRESS_BYTES) == other_in
    assert total(other, Dimension.EGRESS_BYTES) == 0
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    assert rows(cluster, Dimension.PARTITION_HOURS)[this_hour] == (3, False)
    stored = rows(cluster, Dimension.STORAGE_BYTE_HOURS)[this_hour][0]
    log_size = sum(
        int(float(s["value"][1])) for s in env.query(f'kafka_log_log_size{{topic="{orders}"}}')
    )
    # the mean over the hour of a log that has its size for part of the hour so far
    assert 0 < stored <= log_size

    first = ledger()
    metering.collect_cell(cell, now=now)
    assert ledger() == first

    # How a series that reappears is looked up: its topic matched literally, dots and all.
    reader = prometheus.Prometheus(env.prometheus_url)
    literal = prometheus.regex_literal(orders)
    found = reader.latest(f'{BYTES_IN}{{topic=~"{literal}"}}', before=now.timestamp(), lookback=600)
    assert list(found.values()) == [counted_in]


@pytest.mark.kafka
def test_a_brokers_start_is_read_to_the_millisecond(kafka_environment):
    # A broker may start within the second of the last scrape of its predecessor: its start
    # cut to the whole second would seem to come before that scrape (tests/billing/test_rollup.py).
    env = kafka_environment
    now = timezone.now().timestamp()
    window = Window(int(now // HOUR * HOUR), now)
    readings = prometheus.read(prometheus.Prometheus(env.prometheus_url), window, max_gap=90)
    held = {
        float(value)
        for s in env.query("process_start_time_seconds[60s]")
        for _, value in s["values"]
    }
    assert held
    assert held <= {start for starts in readings.starts.values() for start in starts}


@pytest.mark.kafka
@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_leave_the_same_ledger(kafka_environment, metered_cell):
    env = kafka_environment
    cell, cluster = metered_cell
    orders = kafka_topic(env, cluster, "orders", 2)
    produce(env, orders, 50, 300)
    counted = wait_until_scraped(env, BYTES_IN, orders)
    now = timezone.now()
    metering.collect_cell(cell, now=now)
    alone = ledger()
    UsageHour.unscoped_all_tenants.all().delete()
    MeteringCursor.objects.all().delete()

    start, errors = threading.Barrier(4), []

    def run() -> None:
        try:
            start.wait(timeout=10)
            metering.collect_cell(Cell.objects.get(pk=cell.pk), now=now)
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert [row[:5] for row in ledger()] == [row[:5] for row in alone]
    assert total(cluster, Dimension.INGRESS_BYTES) == counted


@pytest.mark.kafka
def test_a_broker_restart_neither_loses_nor_doubles_bytes(kafka_environment, metered_cell):
    env = kafka_environment
    cell, cluster = metered_cell
    orders = kafka_topic(env, cluster, "orders", 1)
    produce(env, orders, 20, 200)
    before_restart = wait_until_scraped(env, BYTES_IN, orders)
    env.restart_broker()
    # more after the restart than before it: the new counter passes the old value, which only
    # the broker's start time tells apart from traffic
    produce(env, orders, 60, 200)
    after_restart = wait_until_scraped(env, BYTES_IN, orders)
    assert after_restart > before_restart

    metering.collect_cell(cell, now=timezone.now())
    quantities = UsageHour.unscoped_all_tenants.filter(cluster=cluster).values_list(
        "quantity", flat=True
    )
    assert min(quantities) >= 0
    assert total(cluster, Dimension.INGRESS_BYTES) == before_restart + after_restart


@pytest.mark.kafka
def test_samples_that_arrive_after_a_run_update_the_open_hour(kafka_environment, metered_cell):
    env = kafka_environment
    cell, cluster = metered_cell
    orders = kafka_topic(env, cluster, "orders", 1)
    produce(env, orders, 10, 100)
    first = wait_until_scraped(env, BYTES_IN, orders)
    earlier = timezone.now()
    metering.collect_cell(cell, now=earlier)
    assert total(cluster, Dimension.INGRESS_BYTES) == first

    produce(env, orders, 30, 100)
    second = wait_until_scraped(env, BYTES_IN, orders)
    metering.collect_cell(cell, now=timezone.now())
    assert total(cluster, Dimension.INGRESS_BYTES) == second > first
    after = ledger()

    # A run computed from the earlier data, finishing last, does not put the older view back.
    MeteringCursor.objects.filter(cell=cell).update(watermark=earlier - timedelta(hours=1))
    metering.collect_cell(cell, now=earlier)
    assert ledger() == after


def test_the_beat_task_collects_every_cell():
    from billing.tasks import collect_usage

    cluster = new_cluster(created=timezone.now() - timedelta(hours=2))
    add_topic(cluster, "orders", 2, created=timezone.now() - timedelta(hours=2))
    assert collect_usage.delay().get(timeout=30) == Cell.objects.count()
    # the hour it was created in, the next and the current one, 2 partitions each
    assert sum(q for q, _ in rows(cluster, Dimension.PARTITION_HOURS).values()) == 3 * 2
