"""Fixtures of the clusters tests."""

import uuid

import pytest
from kubernetes import client

from clusters import rendering
from tests.factories import make_cell
from tests.support.strimzi_emulator import GROUP, VERSION


@pytest.fixture
def dataplane(kube, strimzi_emulator, settings):
    """Sluice pointed at the test API server, with a cell whose shared Kafka is up."""
    settings.SLUICE_DATAPLANE_DRIVER = "kubernetes"
    shared_namespace = f"sluice-shared-{uuid.uuid4().hex[:8]}"
    cell = make_cell(
        kubeconfig=str(kube.kubeconfig),
        shared_kafka_namespace=shared_namespace,
        shared_kafka_name="shared",
    )
    core = client.CoreV1Api(kube.api_client())
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=shared_namespace)))
    client.CustomObjectsApi(kube.api_client()).create_namespaced_custom_object(
        GROUP,
        VERSION,
        shared_namespace,
        "kafkas",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Kafka",
            "metadata": {"name": "shared"},
            "spec": {
                "kafka": {
                    "listeners": [
                        {
                            "name": rendering.bootstrap_listener_name(),
                            "port": 9092,
                            "type": "internal",
                            "tls": False,
                            "authentication": {"type": "scram-sha-512"},
                        }
                    ]
                }
            },
        },
    )
    return cell
