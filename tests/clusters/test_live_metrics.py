"""A cluster's live metrics: read from the real Prometheus of the Kafka test environment (rates,
storage and partitions of the cluster's own topics, against the tier's limits), and "not
measured", never zero, from a cell without Prometheus or one that does not answer."""

from __future__ import annotations

import itertools
import json
import socket
import time

import pytest
from confluent_kafka.admin import NewTopic

from clusters import live_metrics
from clusters.models import Cell, Cluster
from clusters.naming import serverless_prefix
from tests.factories import UserFactory, make_cluster, make_org
from tests.support.services import wait_for

pytestmark = pytest.mark.django_db

MB, GB = 10**6, 10**9


@pytest.fixture
def owner():
    return UserFactory()


@pytest.fixture
def cluster(owner) -> Cluster:
    cluster, _ = make_cluster(make_org(owner=owner, name="Live"))
    return cluster


def fragment(client, cluster: Cluster) -> str:
    response = client.get(
        f"/orgs/{cluster.organization.public_id}/clusters/{cluster.public_id}/metrics/"
    )
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]
    return response.content.decode()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once the probe is closed


def test_a_cell_without_prometheus_measures_nothing_and_says_so(client, owner, cluster):
    assert not cluster.cell.prometheus_url
    client.force_login(owner)
    html = fragment(client, cluster)
    assert html.count("<strong>not measured</strong>") == 5
    assert "This cell has no Prometheus" in html
    assert "<canvas" not in html
    assert "<strong>0 " not in html
    # The limits are still shown: Serverless allows 100 MB/s in and 300 MB/s out.
    assert "of 100 MB/s" in html
    assert "of 300 MB/s" in html
    assert "of 1,500 requests/s" in html
    assert "of 5 TB" in html
    assert "of 2,048 partitions" in html


def test_a_prometheus_that_does_not_answer_is_not_measured_either(client, owner, cluster):
    Cell.objects.filter(pk=cluster.cell.pk).update(
        prometheus_url=f"http://127.0.0.1:{closed_port()}"
    )
    client.force_login(owner)
    html = fragment(client, cluster)
    assert html.count("<strong>not measured</strong>") == 5
    assert "did not answer" in html


def test_the_cluster_page_loads_the_live_metrics_with_htmx(client, owner, cluster):
    client.force_login(owner)
    base = f"/orgs/{cluster.organization.public_id}/clusters/{cluster.public_id}/"
    html = client.get(base).content.decode()
    assert f'hx-get="{base}metrics/"' in html
    assert 'hx-trigger="load, every 60s"' in html
    assert "vendor/chartjs/chart.umd.min.js" in html
    assert "sluice/live-metrics.js" in html


def test_a_non_member_gets_404(client, cluster):
    client.force_login(UserFactory())
    response = client.get(
        f"/orgs/{cluster.organization.public_id}/clusters/{cluster.public_id}/metrics/"
    )
    assert response.status_code == 404


def test_the_series_of_a_dedicated_cluster_are_its_own_kafkas(owner):
    cluster, _ = make_cluster(make_org(owner=owner), tier_slug="dedicated", name="own")
    source = live_metrics.cluster_source(cluster)
    name = cluster.public_id.replace("_", "-")
    assert source.kafka == f'namespace="sl-{name}",strimzi_io_cluster="{name}"'
    assert 'topic!~"__.*"' in source.topics
    # Its limits are per capacity unit: 60 MB/s in per unit.
    assert live_metrics.limits(cluster)["ingress"] == 60 * MB * cluster.capacity_units


def test_how_amounts_read():
    assert live_metrics.amount(1_250_000, "bytes/s") == "1.25 MB/s"
    assert live_metrics.amount(0, "bytes/s") == "0 MB/s"
    assert live_metrics.amount(123_456_000, "bytes/s") == "123 MB/s"
    assert live_metrics.amount(3_200_000_000, "bytes") == "3.2 GB"
    assert live_metrics.amount(5_000 * GB, "bytes") == "5 TB"
    assert live_metrics.amount(12.5, "requests/s") == "12.5 requests/s"
    assert live_metrics.amount(1, "partitions") == "1 partition"
    assert live_metrics.amount(2048, "partitions") == "2,048 partitions"


# Against the real broker and Prometheus ------------------------------------------------------


def create_topic(env, cluster: Cluster, name: str, partitions: int) -> str:
    full = f"{serverless_prefix(cluster.public_id)}{name}"
    admin = env.admin_client()
    admin.create_topics([NewTopic(full, num_partitions=partitions, replication_factor=1)])[
        full
    ].result(timeout=30)
    return full


def produce(env, topic: str, count: int, size: int) -> None:
    from confluent_kafka import Producer

    producer = Producer(env.client_config(**{"linger.ms": 5, "message.timeout.ms": 30000}))
    for index in range(count):
        producer.produce(topic, value=bytes([65 + index % 26]) * size)
    assert producer.flush(30) == 0


@pytest.mark.kafka
def test_live_metrics_are_the_clusters_own_series(kafka_environment, client, owner, cluster):
    env = kafka_environment
    Cell.objects.filter(pk=cluster.cell.pk).update(prometheus_url=env.prometheus_url)
    cluster.cell.refresh_from_db()
    other, _ = make_cluster(make_org(name="Neighbour"), name="other")
    orders = create_topic(env, cluster, "orders", 3)
    create_topic(env, other, "orders", 5)
    # A topic's counters appear on its first traffic, already counting it: a rate needs them
    # scraped before more traffic comes.
    produce(env, orders, 10, 1000)
    wait_for(
        lambda: env.query(f'{live_metrics.BYTES_IN}{{topic="{orders}"}}'),
        timeout=30,
        what="Prometheus to scrape the topic's first counters",
    )
    produce(env, orders, 200, 1000)

    measures: dict[str, live_metrics.Measure] = {}

    def measured() -> bool:
        time.sleep(0.5)  # five queries a round: not a busy loop
        measures.update({m.key: m for m in live_metrics.read(cluster)})
        return all(measures[key].latest for key in ("ingress", "requests", "storage", "partitions"))

    wait_for(measured, timeout=60, what="Prometheus to scrape the topic's traffic and size")
    assert measures["partitions"].latest == 3  # the neighbour's five are not this cluster's
    assert measures["storage"].latest >= 210 * 1000
    assert measures["ingress"].latest > 0
    assert measures["egress"].latest == 0  # nothing read: a true zero, the brokers were scraped
    assert measures["ingress"].limit == 100 * MB
    assert measures["partitions"].limit == 2048
    points = measures["ingress"].points
    assert len(points) == 60  # the last hour, a point a minute
    assert [b - a for (a, _), (b, _) in itertools.pairwise(points)] == [60.0] * 59

    # One topic's measures: its traffic and size, no limits.
    topic = live_metrics.read(cluster, topic=orders, keys=("ingress", "storage"))
    assert [m.key for m in topic] == ["ingress", "storage"]
    assert topic[1].latest == measures["storage"].latest
    assert topic[0].limit is None

    client.force_login(owner)
    html = fragment(client, cluster)
    assert html.count("<canvas") == 5
    assert "of 2,048 partitions" in html
    chart = json.loads(
        html.split('id="live-partitions"')[1]
        .split('data-chart="')[1]
        .split('"')[0]
        .replace("&quot;", '"')
    )
    assert chart["values"][-1] == 3
    assert len(chart["labels"]) == 60
