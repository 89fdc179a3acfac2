"""A dedicated cluster's Kafka: the ``Kafka`` resource (KRaft, SCRAM listeners, simple
authorization, metrics on), its controller and broker ``KafkaNodePool``s sized from the tier, and
the ConfigMap holding the JMX exporter's rules."""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil
from pathlib import Path

from clusters.naming import KAFKA_API_VERSION, bootstrap_listener_name, kafka_name
from clusters.specs import ClusterSpec, InvalidSpec, Limits, Sizing

from .common import GIB, MIB, byte_quantity, cpu_quantity, default_retention_ms, metadata

BOOTSTRAP_LISTENER_PORT = 9092
EXTERNAL_LISTENER_NAME = "external"
EXTERNAL_LISTENER_PORT = 9094

CONTROLLER_POOL = "controller"
BROKER_POOL = "broker"
METRICS_CONFIG_MAP = "kafka-metrics"
METRICS_CONFIG_KEY = "kafka-metrics-config.yml"

# Strimzi's kafka-metrics-config.yml (examples/metrics, release 1.2.0), Apache-2.0.
KAFKA_METRICS_RULES = (Path(__file__).parent.parent / "data" / "kafka-metrics.yaml").read_text()

# KRaft controllers hold only the metadata log: modest and fixed, never more than a broker.
CONTROLLER_CPU_MILLICORES = 1000
CONTROLLER_MEMORY_BYTES = 2 * GIB
CONTROLLER_STORAGE_BYTES = 20 * GIB

# Each container Strimzi runs beside the brokers: topic operator, user operator, Kafka Exporter.
OPERAND_CONTAINERS = 3
OPERAND_CPU_REQUEST_MILLICORES = 200
OPERAND_CPU_LIMIT_MILLICORES = 500
OPERAND_MEMORY_BYTES = 512 * MIB
# Entity operator and Kafka Exporter pods, twice: their Deployments roll with a surge pod.
OPERAND_PODS = 2
OPERAND_SURGE = 2


@dataclass(frozen=True)
class NodeResources:
    """What one node of a pool gets."""

    cpu_millicores: int
    memory_bytes: int
    storage_bytes: int


def sizing_of(spec: ClusterSpec) -> Sizing:
    """The dedicated cluster's sizing, once it is known to be one a Kafka can run with."""
    sizing = spec.sizing
    if sizing is None:
        raise InvalidSpec(f"dedicated cluster {spec.cluster_id} has no sizing")
    if sizing.brokers < 1 or sizing.controllers < 1:
        raise InvalidSpec("a dedicated cluster needs at least one broker and one controller")
    if min(sizing.cpu_millicores, sizing.memory_bytes, sizing.storage_bytes) < 1:
        raise InvalidSpec("broker cpu, memory and storage must be positive")
    return sizing


def broker_resources(sizing: Sizing) -> NodeResources:
    return NodeResources(sizing.cpu_millicores, sizing.memory_bytes, sizing.storage_bytes)


def controller_resources(sizing: Sizing) -> NodeResources:
    return NodeResources(
        min(CONTROLLER_CPU_MILLICORES, sizing.cpu_millicores),
        min(CONTROLLER_MEMORY_BYTES, sizing.memory_bytes),
        min(CONTROLLER_STORAGE_BYTES, sizing.storage_bytes),
    )


def metrics_config_map(spec: ClusterSpec) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(spec, METRICS_CONFIG_MAP),
        "data": {METRICS_CONFIG_KEY: KAFKA_METRICS_RULES},
    }


def node_pools(spec: ClusterSpec, sizing: Sizing) -> list[dict]:
    return [
        _node_pool(spec, CONTROLLER_POOL, sizing.controllers, controller_resources(sizing)),
        _node_pool(spec, BROKER_POOL, sizing.brokers, broker_resources(sizing)),
    ]


def _node_pool(spec: ClusterSpec, role: str, replicas: int, resources: NodeResources) -> dict:
    return {
        "apiVersion": KAFKA_API_VERSION,
        "kind": "KafkaNodePool",
        "metadata": metadata(spec, role, strimzi_cluster=True),
        "spec": {
            "replicas": replicas,
            "roles": [role],
            # Claims go with their node: Strimzi only scales down brokers that hold no
            # partitions, and a kept claim would still count against the namespace's quota.
            "storage": {
                "type": "persistent-claim",
                "size": byte_quantity(resources.storage_bytes),
                "deleteClaim": True,
            },
            # Requests equal limits: dedicated capacity is guaranteed, never burst or shared.
            "resources": {
                "requests": {
                    "cpu": cpu_quantity(resources.cpu_millicores),
                    "memory": byte_quantity(resources.memory_bytes),
                },
                "limits": {
                    "cpu": cpu_quantity(resources.cpu_millicores),
                    "memory": byte_quantity(resources.memory_bytes),
                },
            },
        },
    }


def kafka(spec: ClusterSpec, sizing: Sizing) -> dict:
    # KRaft with node pools is all Strimzi's v1 API knows: no ZooKeeper section, replicas and
    # storage live on the pools, and the strimzi.io/kraft and strimzi.io/node-pools
    # annotations are ignored, so none are written.
    return {
        "apiVersion": KAFKA_API_VERSION,
        "kind": "Kafka",
        "metadata": metadata(spec, kafka_name(spec)),
        "spec": {
            "kafka": {
                "version": spec.kafka_version,
                "listeners": [
                    {
                        "name": bootstrap_listener_name(),
                        "port": BOOTSTRAP_LISTENER_PORT,
                        "type": "internal",
                        "tls": False,
                        "authentication": {"type": "scram-sha-512"},
                    },
                    {
                        "name": EXTERNAL_LISTENER_NAME,
                        "port": EXTERNAL_LISTENER_PORT,
                        "type": "loadbalancer",
                        "tls": True,
                        "authentication": {"type": "scram-sha-512"},
                    },
                ],
                # No super users: Sluice manages topics and users through KafkaTopic and
                # KafkaUser, never over the Kafka protocol, and Strimzi's own operators are
                # super users by their certificates. A standing all-powerful SCRAM principal
                # would only be one more secret to leak.
                "authorization": {"type": "simple"},
                "config": _broker_config(spec.limits, sizing),
                "metricsConfig": {
                    "type": "jmxPrometheusExporter",
                    "valueFrom": {
                        "configMapKeyRef": {"name": METRICS_CONFIG_MAP, "key": METRICS_CONFIG_KEY}
                    },
                },
            },
            "entityOperator": {
                "topicOperator": {"resources": _operand_resources()},
                "userOperator": {"resources": _operand_resources()},
            },
            # Consumer lag per group, which the JMX metrics of the brokers do not give.
            "kafkaExporter": {"resources": _operand_resources()},
        },
    }


def _broker_config(limits: Limits, sizing: Sizing) -> dict:
    replication = min(3, sizing.brokers)
    min_in_sync = 2 if replication >= 3 else 1
    return {
        # Topics are made through Sluice's API, where partition limits and metering hold.
        "auto.create.topics.enable": False,
        "default.replication.factor": replication,
        "min.insync.replicas": min_in_sync,
        "offsets.topic.replication.factor": replication,
        "transaction.state.log.replication.factor": replication,
        "transaction.state.log.min.isr": min_in_sync,
        "log.retention.ms": default_retention_ms(limits),
        # The cluster's connection limit, shared out: max.connections is per broker.
        "max.connections": max(1, ceil(limits.max_connections / sizing.brokers)),
    }


def _operand_resources() -> dict:
    return {
        "requests": {
            "cpu": cpu_quantity(OPERAND_CPU_REQUEST_MILLICORES),
            "memory": byte_quantity(OPERAND_MEMORY_BYTES),
        },
        "limits": {
            "cpu": cpu_quantity(OPERAND_CPU_LIMIT_MILLICORES),
            "memory": byte_quantity(OPERAND_MEMORY_BYTES),
        },
    }
