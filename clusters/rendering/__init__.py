"""One cluster's spec -> the Kubernetes manifests Sluice server-side-applies for it.

``render`` is a pure function: no Django, no database, no network, no environment. The same
spec always renders the same list, in the same order (the order is also a sensible apply
order: namespace and its guards first, then the Kafka, then what lives in it). Status is
never rendered; passwords appear only in ``Secret.stringData``. Every name and label comes from
``clusters.naming``, which the drivers, metering and the connection snippet use too.

By seam: ``namespace`` (a dedicated cluster's namespace, Sluice's binding in it and its
guards), ``kafka`` (its Kafka, node pools and metrics rules), ``topics`` (KafkaTopics),
``users`` (password Secrets and KafkaUsers with their ACLs and quotas), ``common`` (metadata and
quantities).
"""

from __future__ import annotations

from clusters.naming import resource_name
from clusters.specs import ClusterSpec, InvalidSpec, Kind

from .kafka import EXTERNAL_LISTENER_NAME, kafka, metrics_config_map, node_pools, sizing_of
from .namespace import (
    STRIMZI_OPERATOR_NAMESPACE,
    limit_range,
    namespace,
    network_policies,
    resource_quota,
    role_binding,
)
from .topics import kafka_topic
from .users import credentials

__all__ = [
    "EXTERNAL_LISTENER_NAME",
    "STRIMZI_OPERATOR_NAMESPACE",
    "InvalidSpec",
    "render",
    # A naming rule, reachable here too for callers that name a credential's objects.
    "resource_name",
]


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
        *(kafka_topic(spec, topic) for topic in spec.topics),
        *credentials(spec),
    ]


def _render_dedicated(spec: ClusterSpec) -> list[dict]:
    sizing = sizing_of(spec)
    return [
        namespace(spec),
        role_binding(spec),
        *network_policies(spec),
        resource_quota(spec, sizing),
        limit_range(spec),
        metrics_config_map(spec),
        *node_pools(spec, sizing),
        kafka(spec, sizing),
        *(kafka_topic(spec, topic) for topic in spec.topics),
        *credentials(spec),
    ]


def _check_unique(manifests: list[dict]) -> None:
    seen = set()
    for manifest in manifests:
        metadata = manifest["metadata"]
        key = (manifest["kind"], metadata.get("namespace"), metadata["name"])
        if key in seen:
            raise InvalidSpec(f"two objects would be named {key}")
        seen.add(key)
