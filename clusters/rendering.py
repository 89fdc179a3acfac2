"""One cluster's spec -> the Kubernetes manifests Sluice server-side-applies for it.

``render`` is a pure function: no Django, no database, no network, no environment. The same
spec always renders the same list, in the same order (the order is also a sensible apply
order: namespace and its guards first, then the Kafka, then what lives in it). Status is
never rendered; passwords appear only in ``Secret.stringData``.

The naming helpers are what the reconciler uses to find the objects again and read their
status, so every name is derived here and nowhere else.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from math import ceil
from pathlib import Path

from clusters.specs import ClusterSpec, CredentialSpec, Kind, Limits, Sizing, TopicSpec

__all__ = [
    "CLUSTER_LABEL",
    "EXTERNAL_LISTENER_NAME",
    "KAFKA_API_VERSION",
    "MANAGED_BY",
    "MANAGED_BY_LABEL",
    "ORGANIZATION_LABEL",
    "STRIMZI_CLUSTER_LABEL",
    "STRIMZI_OPERATOR_NAMESPACE",
    "InvalidSpec",
    "bootstrap_listener_name",
    "cluster_selector",
    "dedicated_namespace",
    "kafka_name",
    "kafka_topic_name",
    "labels_for",
    "namespace_for",
    "render",
    "resource_name",
    "serverless_prefix",
    "topic_resource_name",
    "user_resource_name",
]

KAFKA_API_VERSION = "kafka.strimzi.io/v1"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "sluice"
ORGANIZATION_LABEL = "sluice.io/org"
CLUSTER_LABEL = "sluice.io/cluster"
STRIMZI_CLUSTER_LABEL = "strimzi.io/cluster"

# Where the Strimzi cluster operator runs; it must reach the brokers of every dedicated cluster.
STRIMZI_OPERATOR_NAMESPACE = "strimzi"

BOOTSTRAP_LISTENER_NAME = "scram"
BOOTSTRAP_LISTENER_PORT = 9092
EXTERNAL_LISTENER_NAME = "external"
EXTERNAL_LISTENER_PORT = 9094
# Prometheus JMX exporter and Kafka Exporter metrics port (fixed by Strimzi).
METRICS_PORT = 9404

CONTROLLER_POOL = "controller"
BROKER_POOL = "broker"
METRICS_CONFIG_MAP = "kafka-metrics"
METRICS_CONFIG_KEY = "kafka-metrics-config.yml"

# Strimzi's kafka-metrics-config.yml (examples/metrics, release 1.2.0), Apache-2.0.
KAFKA_METRICS_RULES = (Path(__file__).parent / "data" / "kafka-metrics.yaml").read_text()

# Kafka's own default retention (7 days); a tier may only lower it.
KAFKA_DEFAULT_RETENTION_MS = 7 * 24 * 3600 * 1000

GIB = 1024**3
MIB = 1024**2

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

# Defaults for any container that comes without resources (quota-limited namespaces reject
# those otherwise).
CONTAINER_DEFAULT_CPU_REQUEST_MILLICORES = 100
CONTAINER_DEFAULT_CPU_LIMIT_MILLICORES = 500
CONTAINER_DEFAULT_MEMORY_REQUEST_BYTES = 256 * MIB
CONTAINER_DEFAULT_MEMORY_LIMIT_BYTES = 512 * MIB

PUBLIC_ID = re.compile(r"^[a-z]+_[a-z0-9]+$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
MAX_LABEL_VALUE = 63
MAX_SUBDOMAIN = 253
# Strimzi labels a user's Secret with the user's name, so it must fit a label value.
MAX_USER_NAME = 63
TOPIC_HASH_LENGTH = 10
HASHED_SUFFIX = re.compile(rf"-[0-9a-f]{{{TOPIC_HASH_LENGTH}}}$")


class InvalidSpec(ValueError):
    """The spec cannot be rendered safely (a name Kubernetes or a shared Kafka would reject,
    or one that could collide with another cluster's)."""


# Naming -----------------------------------------------------------------------------------


def resource_name(public_id: str) -> str:
    """``kc_ab12`` -> ``kc-ab12``: a public id as a DNS-1123 label."""
    if not PUBLIC_ID.match(public_id) or len(public_id) > MAX_LABEL_VALUE:
        raise InvalidSpec(f"not a public id: {public_id!r}")
    return public_id.replace("_", "-")


def namespace_for(spec: ClusterSpec) -> str:
    if spec.kind == Kind.SERVERLESS:
        return _shared_kafka(spec).namespace
    return dedicated_namespace(spec.cluster_id)


def dedicated_namespace(cluster_id: str) -> str:
    """The namespace of a dedicated cluster's Kafka (its Kafka resource is ``resource_name``)."""
    return f"sl-{resource_name(cluster_id)}"


def kafka_name(spec: ClusterSpec) -> str:
    """The Kafka resource the cluster's topics and users belong to (``strimzi.io/cluster``)."""
    if spec.kind == Kind.SERVERLESS:
        return _shared_kafka(spec).name
    return resource_name(spec.cluster_id)


def kafka_topic_name(spec: ClusterSpec, topic_name: str) -> str:
    """The topic's name in Kafka: prefixed by ``<cluster_id>.`` on a shared Kafka."""
    if spec.kind == Kind.SERVERLESS:
        return f"{serverless_prefix(spec.cluster_id)}{topic_name}"
    return topic_name


def topic_resource_name(spec: ClusterSpec, topic_name: str) -> str:
    """The KafkaTopic's ``metadata.name``: the topic name itself when it is a DNS-1123 subdomain,
    otherwise sanitized with a hash of the exact name appended, so names stay unique. On a
    shared Kafka it is scoped by the cluster (``kc-ab12.<topic>``)."""
    scope = f"{resource_name(spec.cluster_id)}." if spec.kind == Kind.SERVERLESS else ""
    room = MAX_SUBDOMAIN - len(scope)
    # A name that already ends like a hashed one is hashed too, so the two forms never meet.
    if (
        len(topic_name) <= room
        and DNS_SUBDOMAIN.match(topic_name)
        and not HASHED_SUFFIX.search(topic_name)
    ):
        return scope + topic_name
    digest = hashlib.sha256(topic_name.encode()).hexdigest()[:TOPIC_HASH_LENGTH]
    sanitized = re.sub(r"[^a-z0-9.-]+", "-", topic_name.lower())
    sanitized = re.sub(r"\.[-.]*", ".", sanitized)  # no empty or dash-led dot-separated labels
    sanitized = re.sub(r"-+\.", ".", sanitized)  # no dash-ended labels
    sanitized = sanitized.strip("-.")[: room - TOPIC_HASH_LENGTH - 1].rstrip("-.")
    # Every hashed name ends in "-<digest>", which names used as they are never do.
    return f"{scope}{sanitized or 'topic'}-{digest}"


def user_resource_name(spec: ClusterSpec, credential: CredentialSpec) -> str:
    """The KafkaUser's ``metadata.name``. Strimzi makes it the Kafka principal (``User:<name>``)
    and names the user's own Secret after it, so it is the credential's username, unchanged;
    see ``_check_credential_name`` for what a username must be."""
    name = credential.username
    _check_credential_name(spec, credential, name, "username", max_length=MAX_USER_NAME)
    return name


def bootstrap_listener_name() -> str:
    """The SCRAM listener clients use; its ``status.listeners[].bootstrapServers`` is the
    cluster's bootstrap address (the shared Kafka of a cell names its listener the same)."""
    return BOOTSTRAP_LISTENER_NAME


def labels_for(spec: ClusterSpec) -> dict[str, str]:
    """The labels on everything rendered for the cluster."""
    return {
        MANAGED_BY_LABEL: MANAGED_BY,
        ORGANIZATION_LABEL: _label_value(spec.organization_id),
        CLUSTER_LABEL: _label_value(spec.cluster_id),
    }


def cluster_selector(spec: ClusterSpec) -> str:
    """A label selector matching every object rendered for the cluster and nothing else:
    Strimzi copies a custom resource's labels onto the objects it makes from it (CA and user
    Secrets, its NetworkPolicies, pods, claims) except ``app.kubernetes.io/*``, so
    ``sluice.io/cluster`` alone would also find those. Prune and delete with this one."""
    return f"{MANAGED_BY_LABEL}={MANAGED_BY},{CLUSTER_LABEL}={_label_value(spec.cluster_id)}"


# Rendering --------------------------------------------------------------------------------


def render(spec: ClusterSpec) -> list[dict]:
    """Every manifest the cluster needs, in apply order."""
    if spec.kind == Kind.SERVERLESS:
        manifests = _render_serverless(spec)
    elif spec.kind == Kind.DEDICATED:
        manifests = _render_dedicated(spec)
    else:  # pragma: no cover - Kind is closed
        raise InvalidSpec(f"unknown cluster kind {spec.kind!r}")
    _check_unique(manifests)
    return manifests


def _render_serverless(spec: ClusterSpec) -> list[dict]:
    # A logical cluster is metadata on the cell's shared Kafka: no namespace, Kafka or policy.
    return [
        *(_kafka_topic(spec, topic) for topic in spec.topics),
        *_credentials(spec),
    ]


def _render_dedicated(spec: ClusterSpec) -> list[dict]:
    sizing = _sizing(spec)
    return [
        _namespace(spec),
        *_network_policies(spec),
        _resource_quota(spec, sizing),
        _limit_range(spec),
        _metrics_config_map(spec),
        _node_pool(spec, CONTROLLER_POOL, sizing.controllers, _controller_resources(sizing)),
        _node_pool(spec, BROKER_POOL, sizing.brokers, _broker_resources(sizing)),
        _kafka(spec, sizing),
        *(_kafka_topic(spec, topic) for topic in spec.topics),
        *_credentials(spec),
    ]


def _credentials(spec: ClusterSpec) -> list[dict]:
    usernames = {user_resource_name(spec, credential) for credential in spec.credentials}
    manifests = []
    for credential in spec.credentials:
        # Strimzi writes a Secret named after each user: ours must not be one of those.
        if credential.password_secret in usernames:
            raise InvalidSpec(
                f"password secret {credential.password_secret!r} is named like a user; "
                "Strimzi owns the Secret of that name"
            )
        manifests += [_password_secret(spec, credential), _kafka_user(spec, credential)]
    return manifests


# Kinds ------------------------------------------------------------------------------------


def _namespace(spec: ClusterSpec) -> dict:
    labels = labels_for(spec)
    # Strimzi's pods meet the baseline Pod Security Standard; nothing here needs more.
    labels["pod-security.kubernetes.io/enforce"] = "baseline"
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace_for(spec), "labels": labels},
    }


def _network_policies(spec: ClusterSpec) -> list[dict]:
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
        "metadata": _metadata(spec, name),
        "spec": policy,
    }


def _resource_quota(spec: ClusterSpec, sizing: Sizing) -> dict:
    controller, broker = _controller_resources(sizing), _broker_resources(sizing)
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
        "metadata": _metadata(spec, "kafka-capacity"),
        "spec": {
            "hard": {
                "requests.cpu": _cpu(cpu_requests),
                "limits.cpu": _cpu(cpu_limits),
                "requests.memory": _bytes(memory),
                "limits.memory": _bytes(memory),
                "requests.storage": _bytes(storage),
                "persistentvolumeclaims": str(sizing.brokers + sizing.controllers),
                "pods": str(sizing.brokers + sizing.controllers + OPERAND_PODS * OPERAND_SURGE),
            }
        },
    }


def _limit_range(spec: ClusterSpec) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": _metadata(spec, "container-defaults"),
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "default": {
                        "cpu": _cpu(CONTAINER_DEFAULT_CPU_LIMIT_MILLICORES),
                        "memory": _bytes(CONTAINER_DEFAULT_MEMORY_LIMIT_BYTES),
                    },
                    "defaultRequest": {
                        "cpu": _cpu(CONTAINER_DEFAULT_CPU_REQUEST_MILLICORES),
                        "memory": _bytes(CONTAINER_DEFAULT_MEMORY_REQUEST_BYTES),
                    },
                }
            ]
        },
    }


def _metrics_config_map(spec: ClusterSpec) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(spec, METRICS_CONFIG_MAP),
        "data": {METRICS_CONFIG_KEY: KAFKA_METRICS_RULES},
    }


def _node_pool(spec: ClusterSpec, role: str, replicas: int, resources: _NodeResources) -> dict:
    return {
        "apiVersion": KAFKA_API_VERSION,
        "kind": "KafkaNodePool",
        "metadata": _metadata(spec, role, strimzi_cluster=True),
        "spec": {
            "replicas": replicas,
            "roles": [role],
            # Claims go with their node: Strimzi only scales down brokers that hold no
            # partitions, and a kept claim would still count against the namespace's quota.
            "storage": {
                "type": "persistent-claim",
                "size": _bytes(resources.storage_bytes),
                "deleteClaim": True,
            },
            # Requests equal limits: dedicated capacity is guaranteed, never burst or shared.
            "resources": {
                "requests": {
                    "cpu": _cpu(resources.cpu_millicores),
                    "memory": _bytes(resources.memory_bytes),
                },
                "limits": {
                    "cpu": _cpu(resources.cpu_millicores),
                    "memory": _bytes(resources.memory_bytes),
                },
            },
        },
    }


def _kafka(spec: ClusterSpec, sizing: Sizing) -> dict:
    # KRaft with node pools is all Strimzi's v1 API knows: no ZooKeeper section, replicas and
    # storage live on the pools, and the strimzi.io/kraft and strimzi.io/node-pools
    # annotations are ignored, so none are written.
    return {
        "apiVersion": KAFKA_API_VERSION,
        "kind": "Kafka",
        "metadata": _metadata(spec, kafka_name(spec)),
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
        "log.retention.ms": _default_retention_ms(limits),
        # The cluster's connection limit, shared out: max.connections is per broker.
        "max.connections": max(1, ceil(limits.max_connections / sizing.brokers)),
    }


def _kafka_topic(spec: ClusterSpec, topic: TopicSpec) -> dict:
    return {
        "apiVersion": KAFKA_API_VERSION,
        "kind": "KafkaTopic",
        "metadata": _metadata(spec, topic_resource_name(spec, topic.name), strimzi_cluster=True),
        "spec": {
            "topicName": kafka_topic_name(spec, topic.name),
            "partitions": topic.partitions,
            "replicas": topic.replicas,
            "config": _topic_config(spec, topic),
        },
    }


def _topic_config(spec: ClusterSpec, topic: TopicSpec) -> dict:
    config = dict(sorted(topic.config.items()))
    ceiling = spec.limits.max_retention_ms
    retention = config.get("retention.ms")
    if retention is None:
        # The shared Kafka's own default may exceed this cluster's tier; a dedicated Kafka's
        # log.retention.ms already holds the default.
        if spec.kind == Kind.SERVERLESS:
            config["retention.ms"] = str(_default_retention_ms(spec.limits))
    else:
        try:
            requested = int(retention)
        except ValueError:
            requested = None  # not a number: Kafka rejects it, nothing to cap
        if requested is not None and (requested < 0 or requested > ceiling):
            config["retention.ms"] = str(ceiling)  # -1 is unlimited: capped as well
    if spec.kind == Kind.SERVERLESS:
        # On a shared Kafka the tier's storage limit holds per partition: unset, unlimited (-1)
        # or above it, a partition keeps at most its share. A dedicated cluster fills only its
        # own volumes, sized from its tier.
        partition_ceiling = spec.limits.max_partition_retention_bytes
        requested = _integer(config.get("retention.bytes"))
        if requested is None or not 0 <= requested <= partition_ceiling:
            config["retention.bytes"] = str(partition_ceiling)
    return config


def _integer(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _password_secret(spec: ClusterSpec, credential: CredentialSpec) -> dict:
    name = credential.password_secret
    _check_credential_name(spec, credential, name, "password secret", max_length=MAX_SUBDOMAIN)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(spec, name),
        "type": "Opaque",
    }
    # A spec without the password renders the Secret without stringData: applying that leaves
    # the stored password as it is, rather than blanking it.
    if credential.password:
        secret["stringData"] = {credential.password_key: credential.password}
    return secret


def _kafka_user(spec: ClusterSpec, credential: CredentialSpec) -> dict:
    user = {
        "apiVersion": KAFKA_API_VERSION,
        "kind": "KafkaUser",
        "metadata": _metadata(spec, user_resource_name(spec, credential), strimzi_cluster=True),
        "spec": {
            "authentication": {
                "type": "scram-sha-512",
                "password": {
                    "valueFrom": {
                        "secretKeyRef": {
                            "name": credential.password_secret,
                            "key": credential.password_key,
                        }
                    }
                },
            },
            "authorization": {"type": "simple", "acls": _acls(spec)},
        },
    }
    quotas = _quotas(spec, credential)
    if quotas:
        user["spec"]["quotas"] = quotas
    return user


def _acls(spec: ClusterSpec) -> list[dict]:
    if spec.kind == Kind.SERVERLESS:
        # Everything the principal may touch starts with "<cluster_id>.": the trailing dot keeps
        # one cluster's prefix from matching another id that merely starts the same way.
        name, pattern = serverless_prefix(spec.cluster_id), "prefix"
    else:
        # A dedicated cluster belongs to one tenant: every topic, group and transactional id.
        name, pattern = "*", "literal"
    acls = [
        # No Create, Delete, Alter or AlterConfigs on topics: topics are made and changed
        # through Sluice's API (partition limits, metering), and the topic operator would
        # revert changes made around it anyway.
        _acl("topic", name, pattern, ["Describe", "DescribeConfigs", "Read", "Write"]),
        _acl("group", name, pattern, ["Read", "Describe", "Delete"]),
        _acl("transactionalId", name, pattern, ["Describe", "Write"]),
    ]
    if spec.kind == Kind.DEDICATED:
        # Read-only views of its own cluster (broker configs, ACLs, log dirs) for the tenant's
        # tooling; never Alter, AlterConfigs or ClusterAction, which belong to the operator.
        acls.append(
            {
                "type": "allow",
                "resource": {"type": "cluster"},
                "operations": ["Describe", "DescribeConfigs"],
            }
        )
    return acls


def _acl(resource_type: str, name: str, pattern: str, operations: list[str]) -> dict:
    return {
        "type": "allow",
        "resource": {"type": resource_type, "name": name, "patternType": pattern},
        "operations": operations,
    }


def _quotas(spec: ClusterSpec, credential: CredentialSpec) -> dict:
    """A principal's client quotas. Its own byte rates are rates across the whole cluster, and
    Kafka enforces them on each broker separately, so they are divided by the broker count. On
    a shared Kafka every principal is throttled, to its own quota capped to its share."""
    own = {
        "producerByteRate": credential.producer_byte_rate,
        "consumerByteRate": credential.consumer_byte_rate,
        "requestPercentage": credential.request_percentage,
        "controllerMutationRate": credential.controller_mutation_rate,
    }
    if spec.kind == Kind.DEDICATED:
        brokers = _sizing(spec).brokers
        return {
            key: _per_broker(value, brokers) if key in BYTE_RATE_QUOTAS else value
            for key, value in own.items()
            if value is not None
        }
    brokers = _shared_kafka(spec).brokers
    own = {
        key: _per_broker(value, brokers) if key in BYTE_RATE_QUOTAS and value is not None else value
        for key, value in own.items()
    }
    return {
        key: share if own[key] is None else min(own[key], share)
        for key, share in _principal_shares(spec).items()
    }


# Quotas Kafka counts in bytes per second, on each broker on its own.
BYTE_RATE_QUOTAS = {"producerByteRate", "consumerByteRate"}


def _principal_shares(spec: ClusterSpec) -> dict:
    """The most each principal of a cluster on a shared Kafka may use, so that the sum over its
    principals (and, for byte rates, over the brokers) stays within the cluster's limits: each
    limit divided by the number of principals, byte rates also by the number of brokers,
    rounded down. A credential added or removed changes every principal's share; the reconciler
    renders the whole cluster on every run, so all its users are re-applied."""
    principals = max(1, len(spec.credentials))
    brokers = max(1, _shared_kafka(spec).brokers)
    limits = spec.limits
    return {
        "producerByteRate": limits.ingress_bytes_per_second // (principals * brokers),
        "consumerByteRate": limits.egress_bytes_per_second // (principals * brokers),
        # Strimzi takes whole percents, and 0 would stop a principal altogether: at least 1
        # each, so only a cluster with more principals than its percentage gets more than it.
        "requestPercentage": max(1, limits.request_percentage // principals),
        "controllerMutationRate": limits.controller_mutation_rate / principals,
    }


def _per_broker(rate: int, brokers: int) -> int:
    """A cluster-wide byte rate as the quota of each broker: rounded down, but a positive rate
    never becomes 0 (which would stop the principal)."""
    return max(1, rate // max(1, brokers)) if rate > 0 else 0


# Pieces -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _NodeResources:
    """What one node of a pool gets."""

    cpu_millicores: int
    memory_bytes: int
    storage_bytes: int


def _broker_resources(sizing: Sizing) -> _NodeResources:
    return _NodeResources(sizing.cpu_millicores, sizing.memory_bytes, sizing.storage_bytes)


def _controller_resources(sizing: Sizing) -> _NodeResources:
    return _NodeResources(
        min(CONTROLLER_CPU_MILLICORES, sizing.cpu_millicores),
        min(CONTROLLER_MEMORY_BYTES, sizing.memory_bytes),
        min(CONTROLLER_STORAGE_BYTES, sizing.storage_bytes),
    )


def _operand_resources() -> dict:
    return {
        "requests": {
            "cpu": _cpu(OPERAND_CPU_REQUEST_MILLICORES),
            "memory": _bytes(OPERAND_MEMORY_BYTES),
        },
        "limits": {
            "cpu": _cpu(OPERAND_CPU_LIMIT_MILLICORES),
            "memory": _bytes(OPERAND_MEMORY_BYTES),
        },
    }


def _metadata(spec: ClusterSpec, name: str, *, strimzi_cluster: bool = False) -> dict:
    labels = labels_for(spec)
    if strimzi_cluster:
        labels[STRIMZI_CLUSTER_LABEL] = kafka_name(spec)
    return {"name": name, "namespace": namespace_for(spec), "labels": labels}


def _default_retention_ms(limits: Limits) -> int:
    return min(KAFKA_DEFAULT_RETENTION_MS, limits.max_retention_ms)


def serverless_prefix(cluster_id: str) -> str:
    """What every topic, group and transactional id of a serverless cluster starts with on
    the shared Kafka: the cluster's id and a dot (which keeps ``kc_a`` from matching ``kc_ab``)."""
    resource_name(cluster_id)  # validates the id
    return f"{cluster_id}."


def _check_credential_name(
    spec: ClusterSpec, credential: CredentialSpec, name: str, what: str, *, max_length: int
) -> None:
    """Usernames and password Secret names must be DNS-1123 subdomains and must not look like
    the names Strimzi gives its own objects, ``<kafka>-<word>-…`` (``<kafka>-cluster-ca-cert``,
    ``<kafka>-broker-0``): after ``<kafka>-`` only one run of letters and digits may follow. On
    a shared Kafka they must also be unique across clusters, so they are scoped by the
    credential (``cred-…``, alone or followed by ``-``/``.``) or by the cluster (``kc-…-`` or
    ``kc-….``); ids hold no ``-`` or ``.``, so no scope is a prefix of another's. Names like
    ``kc-…-<credential>``, ``kc-….app`` and ``cred-…-password`` suit both kinds of cluster."""
    if len(name) > max_length or not DNS_SUBDOMAIN.match(name):
        raise InvalidSpec(
            f"{what} {name!r} is not a DNS-1123 subdomain of at most {max_length} characters"
        )
    strimzi_prefix = f"{kafka_name(spec)}-"
    if name.startswith(strimzi_prefix) and not name[len(strimzi_prefix) :].isalnum():
        raise InvalidSpec(f"{what} {name!r} is named like the objects Strimzi makes")
    if spec.kind == Kind.SERVERLESS:
        scopes = (resource_name(credential.credential_id), resource_name(spec.cluster_id))
        if not (
            name == scopes[0] or name.startswith(tuple(f"{s}{sep}" for s in scopes for sep in "-."))
        ):
            raise InvalidSpec(
                f"{what} {name!r} on a shared Kafka must be {scopes[0]!r} or start with "
                f"{scopes[0]!r} or {scopes[1]!r} followed by '-' or '.'"
            )


def _label_value(public_id: str) -> str:
    if not PUBLIC_ID.match(public_id) or len(public_id) > MAX_LABEL_VALUE:
        raise InvalidSpec(f"not a public id: {public_id!r}")
    return public_id


def _shared_kafka(spec: ClusterSpec):
    shared = spec.shared_kafka
    if shared is None:
        raise InvalidSpec(f"serverless cluster {spec.cluster_id} has no shared Kafka")
    if not DNS_LABEL.match(shared.namespace) or len(shared.namespace) > MAX_LABEL_VALUE:
        raise InvalidSpec(f"shared Kafka namespace {shared.namespace!r} is not a DNS-1123 label")
    if not DNS_SUBDOMAIN.match(shared.name) or len(shared.name) > MAX_LABEL_VALUE:
        raise InvalidSpec(f"shared Kafka name {shared.name!r} is not a valid resource name")
    return shared


def _sizing(spec: ClusterSpec) -> Sizing:
    sizing = spec.sizing
    if sizing is None:
        raise InvalidSpec(f"dedicated cluster {spec.cluster_id} has no sizing")
    if sizing.brokers < 1 or sizing.controllers < 1:
        raise InvalidSpec("a dedicated cluster needs at least one broker and one controller")
    if min(sizing.cpu_millicores, sizing.memory_bytes, sizing.storage_bytes) < 1:
        raise InvalidSpec("broker cpu, memory and storage must be positive")
    return sizing


def _check_unique(manifests: list[dict]) -> None:
    seen = set()
    for manifest in manifests:
        metadata = manifest["metadata"]
        key = (manifest["kind"], metadata.get("namespace"), metadata["name"])
        if key in seen:
            raise InvalidSpec(f"two objects would be named {key}")
        seen.add(key)


def _cpu(millicores: int) -> str:
    """Kubernetes' canonical form: whole cores without a suffix, otherwise millicores."""
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def _bytes(count: int) -> str:
    """Kubernetes' canonical form: the largest binary suffix that keeps the number whole."""
    if count == 0:
        return "0"
    for suffix, size in (("Ti", 1024**4), ("Gi", GIB), ("Mi", MIB), ("Ki", 1024)):
        if count % size == 0:
            return f"{count // size}{suffix}"
    return str(count)
