"""Reading a cluster's consumer groups from its Kafka: each group's state, members and lag per
topic partition, through the cluster's observer principal (``specs.Role.OBSERVER``: it may
describe groups and read their committed offsets, nothing else; on a shared Kafka only names
under the cluster's prefix). Also the Kafka admin connection of Sluice's principals, which the
offset reset (``services.consumer_groups``) uses with the offsets principal.

Groups are live data, never stored: every read asks the broker, with a bounded timeout. Names
are shown as the tenant knows them (without a serverless cluster's ``<cluster_id>.``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from confluent_kafka import (
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec
from django.conf import settings

from foundation import secretbox
from foundation.errors import ConsumerGroupsUnavailable, KafkaUnreachable, NotFound

from . import connection, naming
from .models import Cluster, ClusterState
from .specs import Role

# Kafka's words for a group's state, as the API and the console show them.
STATES = {
    ConsumerGroupState.STABLE: "stable",
    ConsumerGroupState.EMPTY: "empty",
    ConsumerGroupState.PREPARING_REBALANCING: "rebalancing",
    ConsumerGroupState.COMPLETING_REBALANCING: "rebalancing",
    ConsumerGroupState.DEAD: "dead",
    ConsumerGroupState.UNKNOWN: "unknown",
}
# A group may have its offsets reset only while no consumer is in it (Kafka refuses the
# commit otherwise, and the consumers would overwrite it anyway).
INACTIVE_STATES = {"empty"}
# Longer names, and names with control characters, are no group Sluice shows.
MAX_GROUP_NAME = 255


class GroupNameConverter:
    """``<group_name:group>`` in a URL: a group's name without a slash or a control character
    (a NUL, which no page should carry), so anything else is not routed and answers 404."""

    regex = rf"[^/\x00-\x1f\x7f]{{1,{MAX_GROUP_NAME}}}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


@dataclass(frozen=True)
class PartitionLag:
    topic: str  # as the tenant names it
    partition: int
    committed_offset: int | None  # None: the group has committed nothing here
    end_offset: int

    @property
    def lag(self) -> int | None:
        if self.committed_offset is None:
            return None
        return max(0, self.end_offset - self.committed_offset)


@dataclass(frozen=True, order=True)
class Assignment:
    topic: str
    partition: int


@dataclass(frozen=True)
class Member:
    member_id: str
    client_id: str
    host: str
    assignments: tuple[Assignment, ...]


@dataclass(frozen=True)
class GroupSummary:
    name: str
    kafka_name: str
    state: str


@dataclass(frozen=True)
class Group:
    name: str
    kafka_name: str
    state: str
    members: tuple[Member, ...] = ()
    partitions: tuple[PartitionLag, ...] = field(default=())

    @property
    def total_lag(self) -> int:
        return sum(p.lag or 0 for p in self.partitions)

    @property
    def inactive(self) -> bool:
        return self.state in INACTIVE_STATES


# The connection ---------------------------------------------------------------------------------


def check_available(cluster: Cluster) -> None:
    """Consumer groups live in a real Kafka: the simulated data plane has none, and a cluster
    not yet ready has no address to ask."""
    if settings.SLUICE_DATAPLANE_DRIVER != "kubernetes":
        raise ConsumerGroupsUnavailable(
            "Consumer groups are not available on the simulated data plane: no Kafka runs there"
        )
    if cluster.state not in (ClusterState.READY, ClusterState.UPDATING, ClusterState.THROTTLED):
        raise ConsumerGroupsUnavailable("The cluster is not ready: it has no Kafka to ask yet")
    if not cluster.bootstrap_servers:
        raise ConsumerGroupsUnavailable("The cluster has no bootstrap address yet")


def admin_client(cluster: Cluster, role: Role) -> AdminClient:
    """An admin client of the cluster's Kafka, signed in as Sluice's principal of ``role``."""
    check_available(cluster)
    sealed = cluster.sealed_sluice_passwords().get(role)
    if sealed is None:
        raise ConsumerGroupsUnavailable("Sluice has no principal on this cluster's Kafka yet")
    timeout_ms = int(settings.SLUICE_KAFKA_ADMIN_TIMEOUT_SECONDS * 1000)
    return AdminClient(
        {
            "bootstrap.servers": cluster.bootstrap_servers,
            "security.protocol": connection.security_protocol(cluster),
            "sasl.mechanism": connection.SASL_MECHANISM,
            "sasl.username": naming.sluice_username(cluster.public_id, role),
            "sasl.password": secretbox.unseal(sealed),
            "socket.timeout.ms": timeout_ms,
            "socket.connection.setup.timeout.ms": timeout_ms,
        }
    )


def timeout() -> float:
    return settings.SLUICE_KAFKA_ADMIN_TIMEOUT_SECONDS


def wait(future):
    """A future's result, a broker that does not answer in time or refuses as KafkaUnreachable."""
    try:
        return future.result(timeout=timeout())
    except KafkaException as error:
        raise KafkaUnreachable(f"The cluster's Kafka refused or did not answer: {error}") from None
    except TimeoutError:
        raise KafkaUnreachable("The cluster's Kafka did not answer in time") from None


# Names --------------------------------------------------------------------------------------


def kafka_name(cluster: Cluster, name: str) -> str:
    return f"{connection.name_prefix(cluster)}{name}"


def tenant_name(cluster: Cluster, kafka_name: str) -> str:
    return kafka_name.removeprefix(connection.name_prefix(cluster))


# Reads --------------------------------------------------------------------------------------


def list_groups(cluster: Cluster) -> list[GroupSummary]:
    admin = admin_client(cluster, Role.OBSERVER)
    listed = wait(admin.list_consumer_groups(request_timeout=timeout()))
    prefix = connection.name_prefix(cluster)
    return sorted(
        (
            GroupSummary(
                name=tenant_name(cluster, listing.group_id),
                kafka_name=listing.group_id,
                state=STATES.get(listing.state, "unknown"),
            )
            for listing in listed.valid
            # The observer's ACLs already hide other clusters' groups; this keeps it so.
            if listing.group_id.startswith(prefix) and listing.group_id != prefix
        ),
        key=lambda group: group.name,
    )


def get_group(cluster: Cluster, name: str, *, role: Role = Role.OBSERVER) -> Group:
    """One group with its members and, per partition it has offsets on, committed offset, end
    offset and lag. NotFound when Kafka knows no such group of the cluster's."""
    if not name or len(name) > MAX_GROUP_NAME or not name.isprintable():
        raise NotFound(f"No consumer group {name!r} on this cluster")
    admin = admin_client(cluster, role)
    group_id = kafka_name(cluster, name)
    listed = wait(admin.list_consumer_groups(request_timeout=timeout()))
    if group_id not in {listing.group_id for listing in listed.valid} or not name:
        raise NotFound(f"No consumer group {name!r} on this cluster")
    (description,) = (
        wait(future)
        for future in admin.describe_consumer_groups([group_id], request_timeout=timeout()).values()
    )
    members = tuple(
        Member(
            member_id=member.member_id,
            client_id=member.client_id,
            host=member.host,
            assignments=tuple(
                sorted(
                    Assignment(tenant_name(cluster, tp.topic), tp.partition)
                    for tp in (member.assignment.topic_partitions if member.assignment else [])
                )
            ),
        )
        for member in description.members
    )
    committed = committed_offsets(admin, group_id)
    assigned = {
        TopicPartition(kafka_name(cluster, assignment.topic), assignment.partition)
        for member in members
        for assignment in member.assignments
    }
    partitions = {(tp.topic, tp.partition) for tp in [*committed, *assigned]}
    ends = offsets_at(admin, partitions, OffsetSpec.latest())
    offsets = {(tp.topic, tp.partition): tp.offset for tp in committed}
    return Group(
        name=name,
        kafka_name=group_id,
        state=STATES.get(description.state, "unknown"),
        members=members,
        partitions=tuple(
            PartitionLag(
                topic=tenant_name(cluster, topic),
                partition=partition,
                committed_offset=offsets.get((topic, partition)),
                end_offset=ends[(topic, partition)],
            )
            for topic, partition in sorted(partitions)
        ),
    )


def committed_offsets(admin: AdminClient, group_id: str) -> list[TopicPartition]:
    """The group's committed offsets (a negative offset is Kafka's "none": left out)."""
    (result,) = (
        wait(future)
        for future in admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group_id)], request_timeout=timeout()
        ).values()
    )
    return [tp for tp in result.topic_partitions or [] if tp.error is None and tp.offset >= 0]


def offsets_at(
    admin: AdminClient, partitions: set[tuple[str, int]], spec: OffsetSpec
) -> dict[tuple[str, int], int]:
    """Each partition's offset at ``spec`` (earliest, latest, or the first at a timestamp:
    -1 when no record is that recent)."""
    if not partitions:
        return {}
    futures = admin.list_offsets(
        {TopicPartition(topic, partition): spec for topic, partition in partitions},
        request_timeout=timeout(),
    )
    return {(tp.topic, tp.partition): wait(future).offset for tp, future in futures.items()}
