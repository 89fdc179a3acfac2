"""Fixtures of the clusters tests."""

import uuid

import pytest

from tests.factories import make_cell
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
