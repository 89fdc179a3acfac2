"""A new tenant's first hour, in a real browser, against the real thing: sign up (the mailed
link), create an organization, a Serverless cluster on a cell whose shared Kafka is the Kafka
test broker (the Strimzi emulator realises what the reconciler applies there), a topic and a
credential; copy the connection snippet; produce and consume with it through a consumer group;
see the group and its lag, then the hour's usage and what it costs.

Every page is watched (``watched_page``): a console error, an uncaught exception or a CSP
violation anywhere on the way fails the journey."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from django.core import mail

from billing import metering
from billing.models import UsageHour
from billing.presentation import usage_amount
from clusters.connection import kafka_topic_name, name_prefix
from clusters.models import Cluster, Dimension
from tests.billing.test_metering import BYTES_IN, wait_until_scraped
from tests.support.shared_kafka import converge, make_shared_kafka_cell

pytestmark = [pytest.mark.kube, pytest.mark.kafka, pytest.mark.django_db(transaction=True)]

RECORDS = 200
VALUE = b"j" * 1_000


@pytest.fixture
def cell(kube, kafka_environment, strimzi_emulator_on_kafka, settings):
    settings.SLUICE_DATAPLANE_DRIVER = "kubernetes"
    return make_shared_kafka_cell(kube, kafka_environment, strimzi_emulator_on_kafka)


def signed_up(page, email: str) -> None:
    page.goto("/accounts/signup/")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("First name").fill("Ada")
    page.get_by_label("Last name").fill("Lovelace")
    page.get_by_role("button", name="Sign up").click()
    page.get_by_text(email).first.wait_for()
    link = re.search(r"https?://\S+/accounts/signup/\S+/", mail.outbox[-1].body).group(0)
    page.goto(link)
    page.get_by_label("Password", exact=True).fill("correct horse battery staple 42")
    page.get_by_label("Password confirmation").fill("correct horse battery staple 42")
    page.get_by_role("button", name=re.compile("Create|Sign up|Continue")).click()
    page.get_by_text("Welcome to Sluice.").wait_for()


def copied(page, key: str) -> str:
    """What the copy button of the snippet ``key`` put on the clipboard."""
    page.get_by_role("button", name="Copy").first.wait_for()
    page.locator(f'button[data-copy="snippet-{key}"]').click()
    return page.evaluate("navigator.clipboard.readText()")


def client_config(properties: str) -> dict[str, str]:
    """librdkafka's settings for a Java client's properties (the JAAS line as two settings)."""
    found = dict(
        line.split("=", 1) for line in properties.splitlines() if "=" in line and line[0] != "#"
    )
    jaas = found["sasl.jaas.config"]
    return {
        "bootstrap.servers": found["bootstrap.servers"],
        "security.protocol": found["security.protocol"],
        "sasl.mechanism": found["sasl.mechanism"],
        "sasl.username": re.search(r'username="([^"]+)"', jaas).group(1),
        "sasl.password": re.search(r'password="([^"]+)"', jaas).group(1),
    }


def test_a_new_tenant_signs_up_and_connects_a_client(
    watched_page, base_url, cell, kafka_environment
):
    page = watched_page
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    signed_up(page, email)

    page.get_by_label("Name").fill("Analytical Engines")
    page.get_by_role("button", name="Create organization").click()
    page.get_by_role("heading", name="Clusters").first.wait_for()

    page.get_by_label("Cluster name").fill("engine")
    page.locator("label[for=tier-serverless]").click()
    page.get_by_role("button", name="Create cluster").click()
    page.get_by_text("Cluster engine was requested.").wait_for()
    cluster = Cluster.unscoped_all_tenants.get(name="engine")
    converge(cluster.public_id)
    page.reload()
    page.locator(".status-ready").first.wait_for()

    page.locator("#id_topic-name").fill("orders")
    # One partition: an empty group's lag counts the partitions it committed offsets on.
    page.locator("#id_topic-partitions").fill("1")
    page.locator("form[action$='/topics/'] button[type=submit]").click()
    page.get_by_text("orders").first.wait_for()

    page.locator("#id_credential-name").fill("app")
    page.locator("form[action$='/credentials/'] button[type=submit]").click()
    page.get_by_text("Copy the password now").wait_for()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    config = client_config(copied(page, "java"))
    assert config["sasl.password"] == page.locator("#credential-password").inner_text().strip()
    converge(cluster.public_id)  # the credential applied

    topic = kafka_topic_name(cluster, "orders")
    producer = Producer(config)
    for number in range(RECORDS):
        producer.produce(topic, key=str(number).encode(), value=VALUE)
    assert producer.flush(30) == 0
    consumer = Consumer(
        {
            **config,
            "group.id": f"{name_prefix(cluster)}billing-readers",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    read = 0
    deadline = time.monotonic() + 60
    while read < RECORDS // 2 and time.monotonic() < deadline:  # bounded
        message = consumer.poll(1)
        if message is not None and message.error() is None:
            read += 1
    consumer.commit(asynchronous=False)
    consumer.close()
    assert read == RECORDS // 2

    page.goto(f"/orgs/{cluster.organization.public_id}/clusters/{cluster.public_id}/")
    page.get_by_role("link", name="Consumer groups").last.click()
    group = page.locator('tr[data-group="billing-readers"]')
    group.wait_for()
    state, members, lag = group.locator("td").all_inner_texts()[1:4]
    assert (members, lag) == ("0", f"{RECORDS - read:,}")
    assert state == "empty"

    wait_until_scraped(kafka_environment, BYTES_IN, topic)
    metering.collect_cell(cell)
    written = UsageHour.unscoped_all_tenants.get(
        cluster=cluster, dimension=Dimension.INGRESS_BYTES
    ).quantity
    assert written >= RECORDS * len(VALUE)
    page.goto(f"/orgs/{cluster.organization.public_id}/clusters/{cluster.public_id}/")
    ingress = page.locator("#usage tr", has_text="Ingress (written)")
    assert ingress.locator("td").nth(1).inner_text() == usage_amount(written, "bytes")
    # Its cost so far, as its draft invoice's lines: about 200 kB written at $0.08 per GB
    # ($0.000016) and at most one partition-hour at $0.0015 round to no cent on their lines.
    cost = page.locator("#month-to-date-cost")
    assert cost.locator("p strong").inner_text() == "$0.00"
    assert "this cluster's lines of the draft invoice" in cost.inner_text()
