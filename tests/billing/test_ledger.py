"""The usage ledger on PostgreSQL: snapshots upserted, never incremented; invoiced hours turn
later changes into adjustments, once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction

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


def test_an_hour_first_seen_after_its_month_closed_becomes_an_adjustment_not_a_row(cluster):
    # Metering learns of an hour of a closed month that had no row at the close (a late
    # recompute): it was never billed, so all of it is an adjustment, and the ledger keeps the
    # month as it was closed.
    late = HOUR + timedelta(hours=7)
    close_month_of(cluster.organization, HOUR)
    record_hours([HourSnapshot(cluster.pk, Dimension.INGRESS_BYTES, late, 400, True)])
    record_hours([HourSnapshot(cluster.pk, Dimension.INGRESS_BYTES, late, 400, True)])
    assert ledger() == []
    assert list(
        UsageAdjustment.unscoped_all_tenants.values_list("dimension", "hour", "quantity")
    ) == [(Dimension.INGRESS_BYTES, late, 400)]


def test_another_month_of_the_same_organization_is_still_written(cluster):
    close_month_of(cluster.organization, HOUR - timedelta(days=31))  # October closed
    record_hours(snapshots(cluster, hours=1))  # November
    assert [row[3] for row in ledger()] == [1_000, 1_000]
    assert not UsageAdjustment.unscoped_all_tenants.exists()


@pytest.mark.django_db(transaction=True)
def test_a_write_waits_for_a_month_close_holding_the_organization_then_adjusts(cluster):
    # The close holds the organization's row; a ledger write for that month started meanwhile
    # waits, then finds the month closed and records the difference as an adjustment, never
    # changing a row the close has rated.
    from billing.models import ClosedMonth
    from tenants.models import Organization

    record_hours(snapshots(cluster, quantity=100, hours=1))
    holding, release, done = threading.Event(), threading.Event(), threading.Event()
    errors: list[Exception] = []

    def close():
        try:
            with transaction.atomic():
                Organization.objects.select_for_update(no_key=True).get(pk=cluster.organization_id)
                holding.set()
                release.wait(timeout=20)
                ClosedMonth.unscoped_all_tenants.create(
                    organization_id=cluster.organization_id,
                    period_start=HOUR.replace(day=1, hour=0),
                    closed_at=HOUR + timedelta(days=30),
                )
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    def write():
        try:
            record_hours(snapshots(cluster, quantity=130, hours=1))
            done.set()
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    closer = threading.Thread(target=close)
    closer.start()
    assert holding.wait(timeout=20)
    writer = threading.Thread(target=write)
    writer.start()
    assert not done.wait(timeout=1.0)  # held back by the close
    release.set()
    closer.join(timeout=30)
    writer.join(timeout=30)
    assert errors == []
    assert done.is_set()
    assert [row[3] for row in ledger()] == [100, 100]
    assert sorted(UsageAdjustment.unscoped_all_tenants.values_list("quantity", flat=True)) == [
        30,
        30,
    ]
