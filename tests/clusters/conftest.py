"""Fixtures of the clusters tests."""

import uuid

import pytest

from clusters import services
from tenants.audit import Actor
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, make_cell, make_cluster, make_org
from tests.support.cells import kube_credentials
from tests.support.shared_kafka import SHARED_NAME, create_shared_kafka


@pytest.fixture
def dataplane(kube, strimzi_emulator, settings):
    """Sluice pointed at the test API server, with a cell whose shared Kafka is up."""
    settings.SLUICE_DATAPLANE_DRIVER = "kubernetes"
    shared_namespace = f"sluice-shared-{uuid.uuid4().hex[:8]}"
    cell = make_cell(
        credentials=kube_credentials(kube),
        shared_kafka_namespace=shared_namespace,
        shared_kafka_name=SHARED_NAME,
    )
    create_shared_kafka(kube.api_client(), shared_namespace)
    return cell


# A topic's page (test_topic_page, test_topic_settings): an owner and a topic of theirs.


@pytest.fixture
def owner():
    return UserFactory()


@pytest.fixture
def topic(owner):
    cluster, _ = make_cluster(make_org(owner=owner, name="Topics"))
    with tenant_scope(cluster.organization):
        topic, _ = services.topic_create(
            cluster=cluster,
            actor=Actor(system="tests"),
            name="orders.v1",
            partitions=3,
            configs={"max.message.bytes": "2000000"},
        )
    return topic
