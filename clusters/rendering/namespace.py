"""A dedicated cluster's namespace and its guards: the binding that lets Sluice's account write
in it, default-deny ingress, a ResourceQuota sized from the brokers with room for Strimzi's
operands, and container defaults (a LimitRange)."""

from __future__ import annotations

from clusters.naming import labels_for, namespace_for
from clusters.specs import ClusterSpec, Sizing

from .common import MIB, byte_quantity, cpu_quantity, metadata
from .kafka import (
    OPERAND_CONTAINERS,
    OPERAND_CPU_LIMIT_MILLICORES,
    OPERAND_CPU_REQUEST_MILLICORES,
    OPERAND_MEMORY_BYTES,
    OPERAND_PODS,
    OPERAND_SURGE,
    broker_resources,
    controller_resources,
)

# Where the Strimzi cluster operator runs; it must reach the brokers of every dedicated cluster.
STRIMZI_OPERATOR_NAMESPACE = "strimzi"

# The ClusterRole of what Sluice writes in a dedicated namespace (deploy/dataplane/), and the
# RoleBinding that grants it there to Sluice's account.
TENANT_CLUSTER_ROLE = "sluice-tenant"
TENANT_ROLE_BINDING = "sluice-control-plane"

# Prometheus JMX exporter and Kafka Exporter metrics port (fixed by Strimzi).
METRICS_PORT = 9404

# Defaults for any container that comes without resources (quota-limited namespaces reject
# those otherwise).
CONTAINER_DEFAULT_CPU_REQUEST_MILLICORES = 100
CONTAINER_DEFAULT_CPU_LIMIT_MILLICORES = 500
CONTAINER_DEFAULT_MEMORY_REQUEST_BYTES = 256 * MIB
CONTAINER_DEFAULT_MEMORY_LIMIT_BYTES = 512 * MIB


def namespace(spec: ClusterSpec) -> dict:
    labels = labels_for(spec)
    # Strimzi's pods meet the baseline Pod Security Standard; nothing here needs more.
    labels["pod-security.kubernetes.io/enforce"] = "baseline"
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace_for(spec), "labels": labels},
    }


def role_binding(spec: ClusterSpec) -> dict:
    """Sluice's account may write in the namespace it just created, and in no other: the
    ClusterRole is bound here only. It goes with the namespace (never pruned on its own)."""
    account = spec.control_plane
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": metadata(spec, TENANT_ROLE_BINDING),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": TENANT_CLUSTER_ROLE,
        },
        "subjects": [
            {"kind": "ServiceAccount", "name": account.name, "namespace": account.namespace}
        ],
    }


def network_policies(spec: ClusterSpec) -> list[dict]:
    # Ingress is denied unless a policy allows it; policies add up. Pods of the namespace talk
    # to each other (brokers, controllers, entity operator, exporter) and the cluster operator
    # reaches them from its namespace. Client and broker-metrics ports are opened by the
    # policies Strimzi generates per listener (networkPolicyPeers; unset = any source, and
    # SCRAM guards them), so no client port is opened here. Only the Kafka Exporter's metrics
    # port, which Strimzi leaves closed, is opened like the brokers' is. Egress stays open.
    operator_namespace = {
        "namespaceSelector": {
            "matchLabels": {"kubernetes.io/metadata.name": STRIMZI_OPERATOR_NAMESPACE}
        }
    }
    return [
        _network_policy(spec, "default-deny-ingress", ingress=None),
        _network_policy(
            spec,
            "allow-namespace-and-operator",
            ingress=[{"from": [{"podSelector": {}}, operator_namespace]}],
        ),
        _network_policy(
            spec,
            "allow-metrics-scraping",
            ingress=[{"ports": [{"protocol": "TCP", "port": METRICS_PORT}]}],
        ),
    ]


def _network_policy(spec: ClusterSpec, name: str, *, ingress: list[dict] | None) -> dict:
    """A policy over every pod of the namespace; without ingress rules it denies all ingress."""
    policy = {"podSelector": {}, "policyTypes": ["Ingress"]}
    if ingress is not None:
        policy["ingress"] = ingress
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(spec, name),
        "spec": policy,
    }


def resource_quota(spec: ClusterSpec, sizing: Sizing) -> dict:
    controller, broker = controller_resources(sizing), broker_resources(sizing)
    surge = OPERAND_CONTAINERS * OPERAND_SURGE
    cpu_requests = (
        sizing.brokers * broker.cpu_millicores
        + sizing.controllers * controller.cpu_millicores
        + surge * OPERAND_CPU_REQUEST_MILLICORES
    )
    cpu_limits = (
        sizing.brokers * broker.cpu_millicores
        + sizing.controllers * controller.cpu_millicores
        + surge * OPERAND_CPU_LIMIT_MILLICORES
    )
    memory = (
        sizing.brokers * broker.memory_bytes
        + sizing.controllers * controller.memory_bytes
        + surge * OPERAND_MEMORY_BYTES
    )
    storage = sizing.brokers * broker.storage_bytes + sizing.controllers * controller.storage_bytes
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": metadata(spec, "kafka-capacity"),
        "spec": {
            "hard": {
                "requests.cpu": cpu_quantity(cpu_requests),
                "limits.cpu": cpu_quantity(cpu_limits),
                "requests.memory": byte_quantity(memory),
                "limits.memory": byte_quantity(memory),
                "requests.storage": byte_quantity(storage),
                "persistentvolumeclaims": str(sizing.brokers + sizing.controllers),
                "pods": str(sizing.brokers + sizing.controllers + OPERAND_PODS * OPERAND_SURGE),
            }
        },
    }


def limit_range(spec: ClusterSpec) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": metadata(spec, "container-defaults"),
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "default": {
                        "cpu": cpu_quantity(CONTAINER_DEFAULT_CPU_LIMIT_MILLICORES),
                        "memory": byte_quantity(CONTAINER_DEFAULT_MEMORY_LIMIT_BYTES),
                    },
                    "defaultRequest": {
                        "cpu": cpu_quantity(CONTAINER_DEFAULT_CPU_REQUEST_MILLICORES),
                        "memory": byte_quantity(CONTAINER_DEFAULT_MEMORY_REQUEST_BYTES),
                    },
                }
            ]
        },
    }
