"""Serverless clusters on the real thing: a cell whose shared Kafka is the Kafka test broker,
as the Strimzi emulator presents it (its user and topic operators apply KafkaUsers and
KafkaTopics to the broker), clusters reconciled to ready through the kubernetes driver, and
what their connection snippet tells a real client."""

from __future__ import annotations

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from clusters import naming, reconciler
from clusters.models import Cell, Cluster
from clusters.reconciler import Outcome
from tests.factories import make_cell
from tests.support.cells import kube_credentials
from tests.support.services import wait_for
from tests.support.strimzi_emulator import GROUP, VERSION

# The cell's shared Kafka: where the test Prometheus says its broker is (tests/conftest.py).
SHARED_NAMESPACE, SHARED_NAME = "sluice-shared", "shared"


def shared_kafka_manifest(*, port: int = 9092) -> dict:
    """A cell's shared Kafka as Strimzi describes it: one SCRAM listener Sluice reports."""
    listener = {
        "name": naming.bootstrap_listener_name(),
        "port": port,
        "type": "internal",
        "tls": False,
        "authentication": {"type": "scram-sha-512"},
    }
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Kafka",
        "metadata": {"name": SHARED_NAME},
        "spec": {"kafka": {"listeners": [listener]}},
    }


def create_shared_kafka(api, namespace: str) -> None:
    """A new namespace holding a shared Kafka (no broker behind it: the emulator's kind)."""
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "kafkas", shared_kafka_manifest()
    )


def make_shared_kafka_cell(kube, kafka_environment, emulator, **fields) -> Cell:
    """The factories' cell, its shared Kafka the test broker (one broker), behind the emulator."""
    env = kafka_environment
    host, port = env.bootstrap_servers.rsplit(":", 1)
    emulator.bootstrap_host = host  # clients reach the listener here
    cell = make_cell(
        credentials=kube_credentials(kube),
        shared_kafka_namespace=SHARED_NAMESPACE,
        shared_kafka_name=SHARED_NAME,
        shared_kafka_brokers=1,
        prometheus_url=env.prometheus_url,
        **fields,
    )
    api = kube.api_client()

    kafka = shared_kafka_manifest(port=int(port))

    def shared_kafka_created() -> bool:
        # An earlier test's namespace of the same name may still be on its way out: creating
        # the namespace is refused while it is, and so is creating the Kafka in it if the
        # deletion had begun when the namespace was read. Either way: wait, and try again.
        try:
            client.CoreV1Api(api).create_namespace(
                client.V1Namespace(metadata=client.V1ObjectMeta(name=SHARED_NAMESPACE))
            )
        except ApiException as error:
            if error.status != 409:
                raise
        try:
            client.CustomObjectsApi(api).create_namespaced_custom_object(
                GROUP, VERSION, SHARED_NAMESPACE, "kafkas", kafka
            )
        except ApiException as error:
            if _terminating(error):
                return False
            raise
        return True

    wait_for(shared_kafka_created, timeout=90, what=f"the shared Kafka in {SHARED_NAMESPACE}")
    return cell


def _terminating(error: ApiException) -> bool:
    body = error.body or ""
    return (error.status == 403 and "NamespaceTerminating" in body) or (
        error.status == 404 and "namespaces" in body
    )


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
