"""The parallel recompute (billing.recompute) through a real Celery worker: the ledger it leaves
equals the serial run's (a collection reopened at the range's start, run after run) row for
row, with the partition-hours of a small case written out by hand; a rerun changes nothing; the
watermark moves forward only when every chunk succeeded; each row stays its own organization's.

The cells here have no Prometheus (partition-hours come from Sluice's record of topics); bytes
read from the real test Prometheus are in test_recompute_prometheus.py."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from billing import metering
from billing.management.commands.recompute_usage import month
from billing.models import MeteringCursor, UsageHour
from billing.recompute import chunks_plan, recompute_start
from clusters import services as cluster_services
from clusters.models import Cell, Cluster, Dimension, Topic, TopicPartitions
from tenants.audit import Actor
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, make_cluster, make_org

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery_worker]

T0 = datetime(2026, 10, 5, tzinfo=UTC)
END = T0 + timedelta(hours=30)
ACTOR = Actor(system="tests")
LATENESS = timedelta(seconds=300)  # the default SLUICE_METERING_LATENESS_SECONDS, the worker's


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def cluster_of(organization, name: str) -> Cluster:
    cluster, _ = make_cluster(organization, name=name)
    Cluster.unscoped_all_tenants.filter(pk=cluster.pk).update(created_at=at(-1))
    return cluster


def topic(cluster: Cluster, name: str, partitions: int, *, created: datetime) -> Topic:
    with tenant_scope(cluster.organization):
        made, _ = cluster_services.topic_create(
            cluster=cluster, actor=ACTOR, name=name, partitions=partitions
        )
    Topic.unscoped_all_tenants.filter(pk=made.pk).update(created_at=created)
    TopicPartitions.unscoped_all_tenants.filter(topic=made).update(since=created)
    return made


def grow(grown: Topic, partitions: int, *, when: datetime) -> None:
    with tenant_scope(grown.organization):
        cluster_services.topic_update(topic=grown, actor=ACTOR, partitions=partitions)
    latest = TopicPartitions.unscoped_all_tenants.filter(topic=grown).latest("id")
    TopicPartitions.unscoped_all_tenants.filter(pk=latest.pk).update(since=when)


@pytest.fixture
def two_tenants():
    """Two organizations on the cell, their topics' history over the 30 hours from T0."""
    acme, globex = make_org(owner=UserFactory(), name="Acme"), make_org(owner=UserFactory())
    orders = cluster_of(acme, "orders")
    billing = cluster_of(globex, "billing")
    grow(topic(orders, "orders", 3, created=at(0)), 6, when=at(10) + timedelta(minutes=10))
    topic(orders, "payments", 2, created=at(20))
    topic(billing, "invoices", 1, created=at(-1))
    cell = orders.cell
    MeteringCursor.objects.update_or_create(cell=cell, defaults={"watermark": at(12)})
    return cell, orders, billing


def ledger(*, computed_at: bool = False) -> set[tuple]:
    fields = ["cluster_id", "dimension", "hour", "quantity", "complete"]
    return set(UsageHour.unscoped_all_tenants.values_list(*fields, *["computed_at"] * computed_at))


def serial_recompute(cell: Cell, start: datetime, end: datetime) -> set[tuple]:
    """The path before the parallel one: reopen the cell, then collect run after run."""
    metering.reopen(cell, start)
    while metering.collect_cell(cell, now=end).window.end < end.timestamp():
        pass
    return ledger()


def watermark(cell: Cell) -> datetime:
    return MeteringCursor.objects.get(cell=cell).watermark


def test_chunks_cover_the_range_per_cell():
    plan = chunks_plan(["a", "b"], start=at(0.5), end=at(30), chunk_hours=12)
    assert [(c.start, c.end) for c in plan["a"]] == [
        (at(0), at(12)),
        (at(12), at(24)),
        (at(24), at(30)),
    ]
    assert [c.cell for c in plan["b"]] == ["b"] * 3


def test_the_parallel_ledger_is_the_serial_one_and_a_rerun_changes_nothing(
    celery_worker, two_tenants
):
    cell, orders, billing = two_tenants
    serial = serial_recompute(cell, T0, END)
    UsageHour.unscoped_all_tenants.all().delete()
    MeteringCursor.objects.filter(cell=cell).update(watermark=at(12))

    outcome = recompute_start([cell], start=T0, end=END, chunk_hours=12)[cell.slug].get(timeout=60)
    assert (outcome["chunks"], outcome["failed"]) == (3, [])
    assert ledger() == serial
    assert watermark(cell) == END - LATENESS

    # By hand: orders has 3 partitions from 00:00, 6 from 10:10 (hour 10 saw 6), and payments
    # 2 more from 20:00; invoices 1 throughout.
    hours = {
        (pk, hour): quantity
        for pk, dimension, hour, quantity, _ in serial
        if dimension == Dimension.PARTITION_HOURS
    }
    assert [hours[orders.pk, at(h)] for h in (0, 9, 10, 19, 20, 29)] == [3, 3, 6, 6, 8, 8]
    assert sum(q for (pk, _), q in hours.items() if pk == orders.pk) == 10 * 3 + 10 * 6 + 10 * 8
    assert sum(q for (pk, _), q in hours.items() if pk == billing.pk) == 30 * 1
    assert len(hours) == 2 * 30
    assert all(complete for *_, complete in serial)

    first = ledger(computed_at=True)
    again = recompute_start([cell], start=T0, end=END, chunk_hours=12)[cell.slug].get(timeout=60)
    assert again["failed"] == []
    assert ledger(computed_at=True) == first
    assert watermark(cell) == END - LATENESS  # already there: not moved
    # Chunked otherwise (windows overlapping the first run's), the same hours.
    recompute_start([cell], start=T0, end=END, chunk_hours=7)[cell.slug].get(timeout=60)
    assert ledger() == serial


def test_the_ledger_stays_each_organizations_own(celery_worker, two_tenants):
    cell, orders, billing = two_tenants
    recompute_start([cell], start=T0, end=END)[cell.slug].get(timeout=60)
    owners = dict(Cluster.unscoped_all_tenants.values_list("pk", "organization_id"))
    rows = UsageHour.unscoped_all_tenants.values_list("cluster_id", "organization_id")
    assert len(rows) == 2 * 30
    assert all(owners[cluster] == organization for cluster, organization in rows)
    with tenant_scope(orders.organization):
        assert set(UsageHour.objects.values_list("cluster_id", flat=True)) == {orders.pk}
    with tenant_scope(billing.organization):
        assert set(UsageHour.objects.values_list("cluster_id", flat=True)) == {billing.pk}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_failed_chunks_leave_the_watermark_and_are_reported(celery_worker, two_tenants):
    cell, *_ = two_tenants
    Cell.objects.filter(pk=cell.pk).update(prometheus_url=f"http://127.0.0.1:{closed_port()}")
    cell.refresh_from_db()

    outcome = recompute_start([cell], start=T0, end=END, chunk_hours=12)[cell.slug].get(timeout=60)
    assert [(c["start"], c["end"]) for c in outcome["failed"]] == [
        (at(0).isoformat(), at(12).isoformat()),
        (at(12).isoformat(), at(24).isoformat()),
        (at(24).isoformat(), at(30).isoformat()),
    ]
    assert all("PrometheusError" in c["error"] for c in outcome["failed"])
    assert watermark(cell) == at(12)
    cursor = MeteringCursor.objects.get(cell=cell)
    assert cursor.last_error.startswith("recompute from 2026-10-05 00:00 to 2026-10-06 06:00: ")
    assert "3 of 3 chunks failed" in cursor.last_error
    assert not UsageHour.unscoped_all_tenants.exists()


def test_a_watermark_before_the_range_stays(celery_worker, two_tenants):
    """The hours between it and the range were not recomputed: moving it would skip them."""
    cell, *_ = two_tenants
    MeteringCursor.objects.filter(cell=cell).update(watermark=at(-1))
    outcome = recompute_start([cell], start=at(6), end=END)[cell.slug].get(timeout=60)
    assert outcome["failed"] == []
    assert watermark(cell) == at(-1)


def test_the_command_recomputes_a_range_of_named_cells(celery_worker, two_tenants, capsys):
    cell, orders, _ = two_tenants
    call_command(
        "recompute_usage",
        "--since",
        "2026-10-05T00:00",
        "--until",
        END.isoformat(),
        "--cell",
        cell.slug,
        "--wait",
        "60",
    )
    out = capsys.readouterr().out
    assert "Recomputing 2026-10-05 00:00 to 2026-10-06 06:00 UTC on 1 cell(s)." in out
    assert f"{cell.slug}: 2 chunks, 60 rows written, 0 failed" in out
    assert UsageHour.unscoped_all_tenants.filter(cluster=orders).count() == 30
    with pytest.raises(CommandError, match="No such cell: nowhere"):
        call_command("recompute_usage", "--month", "2026-10", "--cell", "nowhere")


def test_a_month_runs_to_the_next_ones_start():
    assert month("2026-11") == (
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 12, 1, tzinfo=UTC),
    )
    assert month("2026-12") == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    with pytest.raises(CommandError, match="--month is YYYY-MM"):
        month("November")
