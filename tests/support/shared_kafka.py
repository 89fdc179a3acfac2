"""Serverless clusters on the real thing: a cell whose shared Kafka is the Kafka test broker,
as the Strimzi emulator presents it (its user and topic operators apply KafkaUsers and
KafkaTopics to the broker), clusters reconciled to ready through the kubernetes driver, and
what their connection snippet tells a real client."""

from __future__ import annotations

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from clusters import reconciler, rendering
from clusters.models import Cell, Cluster
from clusters.reconciler import Outcome
from tests.factories import make_cell
from tests.support.services import wait_for
from tests.support.strimzi_emulator import GROUP, VERSION

# The cell's shared Kafka: where the test Prometheus says its broker is (tests/conftest.py).
SHARED_NAMESPACE, SHARED_NAME = "sluice-shared", "shared"


def make_shared_kafka_cell(kube, kafka_environment, emulator, **fields) -> Cell:
    """The factories' cell, its shared Kafka the test broker (one broker), behind the emulator."""
    env = kafka_environment
    host, port = env.bootstrap_servers.rsplit(":", 1)
    emulator.bootstrap_host = host  # clients reach the listener here
    cell = make_cell(
        kubeconfig=str(kube.kubeconfig),
        shared_kafka_namespace=SHARED_NAMESPACE,
        shared_kafka_name=SHARED_NAME,
        shared_kafka_brokers=1,
        prometheus_url=env.prometheus_url,
        **fields,
    )
    api = kube.api_client()

    def namespace_created() -> bool:
        try:
            client.CoreV1Api(api).create_namespace(
                client.V1Namespace(metadata=client.V1ObjectMeta(name=SHARED_NAMESPACE))
            )
        except ApiException as error:
            if error.status == 409 and "being deleted" in (error.body or ""):
                return False  # an earlier test's, on its way out
            raise
        return True

    wait_for(namespace_created, timeout=60, what=f"namespace {SHARED_NAMESPACE} to be created")
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP,
        VERSION,
        SHARED_NAMESPACE,
        "kafkas",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Kafka",
            "metadata": {"name": SHARED_NAME},
            "spec": {
                "kafka": {
                    "listeners": [
                        {
                            "name": rendering.bootstrap_listener_name(),
                            "port": int(port),
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


def converge(cluster_id: str) -> Cluster:
    cluster = Cluster.unscoped_all_tenants.get(public_id=cluster_id)
    outcomes = []

    def done() -> bool:
        outcomes.append(reconciler.reconcile(cluster.pk))
        return outcomes[-1] in (Outcome.CONVERGED, Outcome.FAILED)

    wait_for(done, timeout=60, what=f"{cluster_id} to converge ({outcomes[-3:]})")
    cluster.refresh_from_db()
    assert cluster.state == "ready", cluster.failure_message
    return cluster


def tenant_config(credential: dict, **extra) -> dict:
    """What the cluster's connection snippet (kept with the credential here) tells a client;
    librdkafka takes the username and password as settings rather than the JAAS line."""
    snippet = credential["connection"]["client_properties"]
    properties = dict(line.split("=", 1) for line in snippet.splitlines() if line)
    return {
        "bootstrap.servers": properties["bootstrap.servers"],
        "security.protocol": properties["security.protocol"],
        "sasl.mechanism": properties["sasl.mechanism"],
        "sasl.username": credential["username"],
        "sasl.password": credential["password"],
        **extra,
    }
