"""The names and labels a cluster has in the data plane: its namespace, its Kafka, the Kubernetes
names of its topics and users, the names Kafka knows them by, and the ``<cluster_id>.`` prefix of
a serverless cluster on its cell's shared Kafka.

This is a contract between four readers, so every name is derived here and nowhere else: the
renderer writes the objects under these names, the drivers find them again and read their status,
metering attributes a series of the cell's Prometheus back to the cluster it belongs to, and the
connection snippet tells clients which names to use. Pure functions of plain values (ids, specs):
no Django, no database.
"""

from __future__ import annotations

import hashlib
import re

from clusters.specs import ClusterSpec, CredentialSpec, InvalidSpec, Kind, SharedKafka

__all__ = [
    "CLUSTER_LABEL",
    "KAFKA_API_VERSION",
    "MANAGED_BY",
    "MANAGED_BY_LABEL",
    "MAX_LABEL_VALUE",
    "MAX_SUBDOMAIN",
    "MAX_USER_NAME",
    "ORGANIZATION_LABEL",
    "STRIMZI_CLUSTER_LABEL",
    "bootstrap_listener_name",
    "check_credential_name",
    "cluster_selector",
    "credential_username",
    "dedicated_kafka",
    "dedicated_namespace",
    "kafka_name",
    "kafka_topic_name",
    "labels_for",
    "name_prefix",
    "namespace_for",
    "password_secret_name",
    "resource_name",
    "serverless_prefix",
    "serverless_prefix_of",
    "shared_kafka",
    "sluice_password_secret_name",
    "sluice_username",
    "topic_resource_name",
    "user_resource_name",
]

# The API group and version of every Strimzi resource Sluice writes and reads back.
KAFKA_API_VERSION = "kafka.strimzi.io/v1"

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "sluice"
ORGANIZATION_LABEL = "sluice.io/org"
CLUSTER_LABEL = "sluice.io/cluster"
STRIMZI_CLUSTER_LABEL = "strimzi.io/cluster"

BOOTSTRAP_LISTENER_NAME = "scram"

PUBLIC_ID = re.compile(r"^[a-z]+_[a-z0-9]+$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
MAX_LABEL_VALUE = 63
MAX_SUBDOMAIN = 253
# Strimzi labels a user's Secret with the user's name, so it must fit a label value.
MAX_USER_NAME = 63
TOPIC_HASH_LENGTH = 10
HASHED_SUFFIX = re.compile(rf"-[0-9a-f]{{{TOPIC_HASH_LENGTH}}}$")


# Ids -------------------------------------------------------------------------------------------


def resource_name(public_id: str) -> str:
    """``kc_ab12`` -> ``kc-ab12``: a public id as a DNS-1123 label."""
    return _public_id(public_id).replace("_", "-")


def _public_id(public_id: str) -> str:
    if not PUBLIC_ID.match(public_id) or len(public_id) > MAX_LABEL_VALUE:
        raise InvalidSpec(f"not a public id: {public_id!r}")
    return public_id


# Where a cluster's Kafka is ------------------------------------------------------------------


def namespace_for(spec: ClusterSpec) -> str:
    if spec.kind == Kind.SERVERLESS:
        return shared_kafka(spec).namespace
    return dedicated_namespace(spec.cluster_id)


def dedicated_namespace(cluster_id: str) -> str:
    """The namespace of a dedicated cluster's Kafka (its Kafka resource is ``resource_name``)."""
    return f"sl-{resource_name(cluster_id)}"


def dedicated_kafka(cluster_id: str) -> tuple[str, str]:
    """(namespace, Kafka resource name) of a dedicated cluster: where its series come from, as
    Prometheus labels them (``namespace``, ``strimzi_io_cluster``)."""
    return dedicated_namespace(cluster_id), resource_name(cluster_id)


def kafka_name(spec: ClusterSpec) -> str:
    """The Kafka resource the cluster's topics and users belong to (``strimzi.io/cluster``)."""
    if spec.kind == Kind.SERVERLESS:
        return shared_kafka(spec).name
    return resource_name(spec.cluster_id)


def shared_kafka(spec: ClusterSpec) -> SharedKafka:
    """The shared Kafka a serverless cluster lives on, once its names are known to be valid."""
    shared = spec.shared_kafka
    if shared is None:
        raise InvalidSpec(f"serverless cluster {spec.cluster_id} has no shared Kafka")
    if not DNS_LABEL.match(shared.namespace) or len(shared.namespace) > MAX_LABEL_VALUE:
        raise InvalidSpec(f"shared Kafka namespace {shared.namespace!r} is not a DNS-1123 label")
    if not DNS_SUBDOMAIN.match(shared.name) or len(shared.name) > MAX_LABEL_VALUE:
        raise InvalidSpec(f"shared Kafka name {shared.name!r} is not a valid resource name")
    return shared


def bootstrap_listener_name() -> str:
    """The SCRAM listener clients use; its ``status.listeners[].bootstrapServers`` is the
    cluster's bootstrap address (the shared Kafka of a cell names its listener the same)."""
    return BOOTSTRAP_LISTENER_NAME


# Names in Kafka --------------------------------------------------------------------------------


def serverless_prefix(cluster_id: str) -> str:
    """What every topic, group and transactional id of a serverless cluster starts with on
    the shared Kafka: the cluster's id and a dot (which keeps ``kc_a`` from matching ``kc_ab``)."""
    resource_name(cluster_id)  # validates the id
    return f"{cluster_id}."


def serverless_prefix_of(kafka_name: str) -> str | None:
    """The ``serverless_prefix`` a name on a shared Kafka carries (everything up to its first
    dot, the dot included), or None when it has no dot; the inverse metering attributes by."""
    prefix, dot, _ = kafka_name.partition(".")
    return f"{prefix}." if dot else None


def name_prefix(cluster_id: str, kind: str) -> str:
    """What the cluster's topic, group and transactional id names start with in Kafka: the
    serverless prefix on a shared Kafka, nothing on a Kafka of its own."""
    return serverless_prefix(cluster_id) if kind == Kind.SERVERLESS else ""


def kafka_topic_name(spec: ClusterSpec, topic_name: str) -> str:
    """The topic's name in Kafka: prefixed by ``<cluster_id>.`` on a shared Kafka."""
    return f"{name_prefix(spec.cluster_id, spec.kind)}{topic_name}"


def credential_username(cluster_id: str, credential_id: str) -> str:
    """The username (and Kafka principal) a new credential gets: scoped by its cluster, so it
    suits a shared Kafka and a dedicated one alike (see ``check_credential_name``)."""
    return f"{resource_name(cluster_id)}-{_public_id(credential_id).split('_', 1)[1]}"


def password_secret_name(credential_id: str) -> str:
    """The Secret Sluice writes a credential's password into, scoped by the credential."""
    return f"{resource_name(credential_id)}-scram"


def sluice_username(cluster_id: str, role: str) -> str:
    """The username of one of Sluice's own principals on the cluster's Kafka
    (``kc-ab12.sluice-observer``): scoped by the cluster like a tenant's, and with a dot where
    tenants' generated usernames have a dash, so the two never meet."""
    return f"{resource_name(cluster_id)}.sluice-{role}"


def sluice_password_secret_name(cluster_id: str, role: str) -> str:
    return f"{sluice_username(cluster_id, role)}-scram"


# Names in Kubernetes ---------------------------------------------------------------------------


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
    see ``check_credential_name`` for what a username must be."""
    name = credential.username
    check_credential_name(spec, credential, name, "username", max_length=MAX_USER_NAME)
    return name


def check_credential_name(
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


# Labels ----------------------------------------------------------------------------------------


def labels_for(spec: ClusterSpec) -> dict[str, str]:
    """The labels on everything rendered for the cluster."""
    return {
        MANAGED_BY_LABEL: MANAGED_BY,
        ORGANIZATION_LABEL: _public_id(spec.organization_id),
        CLUSTER_LABEL: _public_id(spec.cluster_id),
    }


def cluster_selector(spec: ClusterSpec) -> str:
    """A label selector matching every object rendered for the cluster and nothing else:
    Strimzi copies a custom resource's labels onto the objects it makes from it (CA and user
    Secrets, its NetworkPolicies, pods, claims) except ``app.kubernetes.io/*``, so
    ``sluice.io/cluster`` alone would also find those. Prune and delete with this one."""
    return f"{MANAGED_BY_LABEL}={MANAGED_BY},{CLUSTER_LABEL}={_public_id(spec.cluster_id)}"
