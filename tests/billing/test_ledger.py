"""The usage ledger on PostgreSQL: snapshots upserted, never incremented; invoiced hours turn
later changes into adjustments, once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from billing.models import UsageAdjustment, UsageHour
from billing.services import HourSnapshot, record_hours
from clusters.models import Dimension
from tests.factories import UserFactory, close_month_of, make_cluster, make_org

pytestmark = pytest.mark.django_db

HOUR = datetime(2026, 11, 1, 10, tzinfo=UTC)


def snapshots(cluster, *, quantity: int = 1_000, complete: bool = True, hours: int = 3):
    return [
        HourSnapshot(
            cluster_id=cluster.pk,
            dimension=dimension,
            hour=HOUR + timedelta(hours=offset),
            quantity=quantity + offset,
            complete=complete,
        )
        for offset in range(hours)
        for dimension in (Dimension.INGRESS_BYTES, Dimension.EGRESS_BYTES)
    ]


def ledger() -> list[tuple]:
    return list(
        UsageHour.unscoped_all_tenants.order_by("cluster_id", "dimension", "hour").values_list(
            "cluster_id", "dimension", "hour", "quantity", "complete"
        )
    )


@pytest.fixture
def cluster():
    cluster, _ = make_cluster(make_org(owner=UserFactory()))
    return cluster


def test_recording_again_changes_nothing(cluster):
    assert record_hours(snapshots(cluster)) == 6
    first = ledger()
    record_hours(snapshots(cluster))
    assert ledger() == first
    assert len(first) == 6


def test_a_recomputed_hour_replaces_the_snapshot(cluster):
    record_hours(snapshots(cluster, quantity=10, complete=False))
    record_hours(snapshots(cluster, quantity=500, complete=True))
    rows = UsageHour.unscoped_all_tenants.filter(dimension=Dimension.INGRESS_BYTES)
    assert sorted(rows.values_list("quantity", flat=True)) == [500, 501, 502]
    assert all(row.complete for row in rows)
    assert {row.organization_id for row in rows} == {cluster.organization_id}


@pytest.mark.django_db(transaction=True)
def test_concurrent_recording_leaves_one_row_per_hour(cluster):
    start = threading.Barrier(6)
    errors = []

    def write() -> None:
        try:
            start.wait(timeout=10)
            record_hours(snapshots(cluster, quantity=7))
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=write) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert [row[3] for row in ledger()] == [7, 8, 9, 7, 8, 9]


def test_an_invoiced_hour_takes_an_adjustment_once(cluster):
    record_hours(snapshots(cluster, quantity=100))
    close_month_of(cluster.organization, HOUR)
    record_hours(snapshots(cluster, quantity=130))  # late samples: 30 more in every hour
    record_hours(snapshots(cluster, quantity=130))  # the same again: nothing more
    assert sorted(UsageHour.unscoped_all_tenants.values_list("quantity", flat=True)) == [
        100,
        100,
        101,
        101,
        102,
        102,
    ]
    adjustments = UsageAdjustment.unscoped_all_tenants.all()
    assert [a.quantity for a in adjustments] == [30] * 6
    record_hours(snapshots(cluster, quantity=125))  # a correction downwards
    assert sorted(a.quantity for a in UsageAdjustment.unscoped_all_tenants.all()) == (
        [-5] * 6 + [30] * 6
    )


def test_negative_usage_or_a_misaligned_hour_is_refused(cluster):
    bad = snapshots(cluster, hours=1)[0]
    with pytest.raises(ValueError, match="negative"):
        record_hours([HourSnapshot(**{**bad.__dict__, "quantity": -1})])
    with pytest.raises(ValueError, match="start of an hour"):
        record_hours([HourSnapshot(**{**bad.__dict__, "hour": HOUR + timedelta(minutes=5)})])
    assert not UsageHour.unscoped_all_tenants.exists()
