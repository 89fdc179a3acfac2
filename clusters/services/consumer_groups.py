"""Resetting a consumer group's committed offsets, to the earliest or latest offset of each
partition or to the first record at or after a time: only while the group is inactive (no
consumer in it, Kafka's ``Empty``), as Confluent Cloud and Aiven allow, and audited.

The reset is made by Sluice's offsets principal (``specs.Role.OFFSETS``), the only principal of
Sluice's that may commit offsets: the observer that reads groups cannot. It is synchronous: a few
admin requests, each bounded by ``SLUICE_KAFKA_ADMIN_TIMEOUT_SECONDS``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import OffsetSpec

from foundation.errors import Conflict, InvalidInput
from tenants.audit import Actor, audit_record

from .. import consumer_groups as groups
from ..models import Cluster
from ..specs import Role

TARGETS = ("earliest", "latest", "timestamp")


@dataclass(frozen=True)
class OffsetMove:
    topic: str
    partition: int
    before: int | None
    after: int


def consumer_group_reset_offsets(
    *,
    cluster: Cluster,
    actor: Actor,
    group: str,
    to: str,
    timestamp: datetime | None = None,
    topic: str | None = None,
) -> list[OffsetMove]:
    """Move the group's committed offsets on every partition it has offsets on (only those of
    ``topic`` when given) to ``to``. Refused while the group has members."""
    if to not in TARGETS:
        raise InvalidInput(f"to is one of {', '.join(TARGETS)}", field="to")
    if (to == "timestamp") != (timestamp is not None):
        raise InvalidInput("timestamp is given with to=timestamp, and only then", field="timestamp")
    current = groups.get_group(cluster, group, role=Role.OFFSETS)
    if not current.inactive:
        raise Conflict(
            f"The group {group!r} is {current.state} with {len(current.members)} member(s): "
            "stop its consumers first, offsets are reset only for an inactive group"
        )
    partitions = [p for p in current.partitions if topic is None or p.topic == topic]
    if not partitions:
        raise InvalidInput(
            f"The group has no offsets on topic {topic!r}"
            if topic
            else "The group has no committed offsets to reset",
            field="topic" if topic else "group",
        )
    admin = groups.admin_client(cluster, Role.OFFSETS)
    kafka_partitions = {(groups.kafka_name(cluster, p.topic), p.partition) for p in partitions}
    targets = groups.offsets_at(admin, kafka_partitions, _offset_spec(to, timestamp))
    if to == "timestamp":
        # No record that recent: the partition's end, where the next record will be.
        ends = groups.offsets_at(admin, kafka_partitions, OffsetSpec.latest())
        targets = {key: offset if offset >= 0 else ends[key] for key, offset in targets.items()}
    request = ConsumerGroupTopicPartitions(
        current.kafka_name,
        [TopicPartition(name, partition, offset) for (name, partition), offset in targets.items()],
    )
    refused: dict[tuple[str, int], str] = {}
    for future in admin.alter_consumer_group_offsets([request]).values():
        # Kafka refuses a commit partition by partition (authorization, a consumer that joined
        # meanwhile): the request itself succeeds, with each partition's error.
        for tp in groups.wait(future).topic_partitions or []:
            if tp.error:
                refused[(tp.topic, tp.partition)] = tp.error.str()
    moves = [
        OffsetMove(
            topic=p.topic,
            partition=p.partition,
            before=p.committed_offset,
            after=targets[key],
        )
        for p in partitions
        if (key := (groups.kafka_name(cluster, p.topic), p.partition)) not in refused
    ]
    if moves:
        audit_record(
            organization=cluster.organization,
            actor=actor,
            action="consumer_group.offsets_reset",
            target=cluster,
            before={"group": group, "offsets": {_key(m): m.before for m in moves}},
            after={
                "group": group,
                "to": to,
                **({"timestamp": timestamp.isoformat()} if timestamp else {}),
                "offsets": {_key(m): m.after for m in moves},
            },
        )
    if refused:
        raise Conflict(
            f"Kafka refused the new offsets of {group!r} on {len(refused)} of "
            f"{len(partitions)} partition(s) ({next(iter(refused.values()))}); "
            f"{len(moves)} moved"
        )
    return moves


def _offset_spec(to: str, timestamp: datetime | None) -> OffsetSpec:
    if to == "earliest":
        return OffsetSpec.earliest()
    if to == "latest":
        return OffsetSpec.latest()
    return OffsetSpec.for_timestamp(int(timestamp.timestamp() * 1000))


def _key(move: OffsetMove) -> str:
    return f"{move.topic}/{move.partition}"
