"""A cluster's credentials: each a password ``Secret`` and a SCRAM-SHA-512 ``KafkaUser`` with its
ACLs (prefixed to the cluster on a shared Kafka) and client quotas (on a shared Kafka, every
principal throttled to its share of the cluster's limits). Sluice's own principals of the
cluster (``specs.Role``) are rendered the same way, with their narrower ACLs and no quotas."""

from __future__ import annotations

from clusters.naming import (
    KAFKA_API_VERSION,
    MAX_SUBDOMAIN,
    check_credential_name,
    serverless_prefix,
    shared_kafka,
    user_resource_name,
)
from clusters.specs import ClusterSpec, CredentialSpec, InvalidSpec, Kind, Role

from .common import metadata
from .kafka import sizing_of

# Quotas Kafka counts in bytes per second, on each broker on its own.
BYTE_RATE_QUOTAS = {"producerByteRate", "consumerByteRate"}


def credentials(spec: ClusterSpec) -> list[dict]:
    principals = (*spec.credentials, *spec.sluice_principals)
    usernames = {user_resource_name(spec, credential) for credential in principals}
    manifests = []
    for credential in principals:
        # Strimzi writes a Secret named after each user: ours must not be one of those.
        if credential.password_secret in usernames:
            raise InvalidSpec(
                f"password secret {credential.password_secret!r} is named like a user; "
                "Strimzi owns the Secret of that name"
            )
        manifests += [_password_secret(spec, credential), _kafka_user(spec, credential)]
    return manifests


def _password_secret(spec: ClusterSpec, credential: CredentialSpec) -> dict:
    name = credential.password_secret
    check_credential_name(spec, credential, name, "password secret", max_length=MAX_SUBDOMAIN)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(spec, name),
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
        "metadata": metadata(spec, user_resource_name(spec, credential), strimzi_cluster=True),
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
            "authorization": {"type": "simple", "acls": _acls(spec, credential.role)},
        },
    }
    # Sluice's own principals make a few small admin requests when asked: not throttled.
    quotas = _quotas(spec, credential) if credential.role == Role.TENANT else {}
    if quotas:
        user["spec"]["quotas"] = quotas
    return user


# Sluice's own principals. Kafka lets DescribeGroups, ListGroups, OffsetFetch and ListOffsets
# through with Describe on the group and its topics; committing offsets (a reset) takes Read on
# both, so that right is a second principal's, used for nothing else.
SLUICE_ACLS = {
    Role.OBSERVER: {"topic": ["Describe"], "group": ["Describe"]},
    Role.OFFSETS: {"topic": ["Describe", "Read"], "group": ["Describe", "Read"]},
}


def _acls(spec: ClusterSpec, role: Role = Role.TENANT) -> list[dict]:
    if spec.kind == Kind.SERVERLESS:
        # Everything the principal may touch starts with "<cluster_id>.": the trailing dot keeps
        # one cluster's prefix from matching another id that merely starts the same way.
        name, pattern = serverless_prefix(spec.cluster_id), "prefix"
    else:
        # A dedicated cluster belongs to one tenant: every topic, group and transactional id.
        name, pattern = "*", "literal"
    if role != Role.TENANT:
        return [
            _acl(resource, name, pattern, operations)
            for resource, operations in SLUICE_ACLS[role].items()
        ]
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
        brokers = sizing_of(spec).brokers
        return {
            key: _per_broker(value, brokers) if key in BYTE_RATE_QUOTAS else value
            for key, value in own.items()
            if value is not None
        }
    brokers = shared_kafka(spec).brokers
    own = {
        key: _per_broker(value, brokers) if key in BYTE_RATE_QUOTAS and value is not None else value
        for key, value in own.items()
    }
    quotas = {
        key: share if own[key] is None else min(own[key], share)
        for key, share in _principal_shares(spec).items()
    }
    if spec.throttle is not None:
        floors = spec.throttle
        quotas["producerByteRate"] = _per_broker(floors.producer_bytes_per_second, brokers)
        quotas["consumerByteRate"] = _per_broker(floors.consumer_bytes_per_second, brokers)
        quotas["controllerMutationRate"] = floors.controller_mutation_rate
    return quotas


def _principal_shares(spec: ClusterSpec) -> dict:
    """The most each principal of a cluster on a shared Kafka may use, so that the sum over its
    principals (and, for byte rates, over the brokers) stays within the cluster's limits: each
    limit divided by the number of principals, byte rates also by the number of brokers,
    rounded down. A credential added or removed changes every principal's share; the reconciler
    renders the whole cluster on every run, so all its users are re-applied."""
    principals = max(1, len(spec.credentials))
    brokers = max(1, shared_kafka(spec).brokers)
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
