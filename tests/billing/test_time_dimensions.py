"""The time dimensions: cluster-hours (Standard) and capacity-unit-hours (Dedicated), metered
from Sluice's record of cluster sizes (clusters.ClusterSize) on a cell without Prometheus, as
every cell gets them; the record itself, its backfill, and how usage reads them.

The clusters are made through the services and their times then moved into a fixed past day
(2026-11-02), as the partition-hour tests do."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from billing import metering, selectors
from billing.models import UsageHour
from billing.panels import cluster_usage_panel
from billing.presentation import usage_amount
from clusters import services as cluster_services
from clusters.models import Cluster, ClusterSize, Dimension, Tier, TierPrice
from tenants.audit import Actor
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, make_cluster, make_org

pytestmark = pytest.mark.django_db

ACTOR = Actor(system="tests")
CLUSTER_HOURS, UNIT_HOURS = Dimension.CLUSTER_HOURS, Dimension.CAPACITY_UNIT_HOURS
DAY = datetime(2026, 11, 2, tzinfo=UTC)


def at(hour: int, minute: int = 0) -> datetime:
    return DAY + timedelta(hours=hour, minutes=minute)


def new_cluster(tier_slug: str, *, created: datetime, units: int | None = None) -> Cluster:
    """A cluster made through the services, created at ``created`` (its first size too)."""
    cluster, _ = make_cluster(
        make_org(owner=UserFactory()), tier_slug=tier_slug, capacity_units=units
    )
    Cluster.unscoped_all_tenants.filter(pk=cluster.pk).update(created_at=created)
    ClusterSize.unscoped_all_tenants.filter(cluster=cluster).update(since=created)
    cluster.refresh_from_db()
    return cluster


def reshape(cluster: Cluster, *, when: datetime, **change) -> None:
    """Resize or change tier through the service, as if asked at ``when``."""
    with tenant_scope(cluster.organization):
        cluster_services.cluster_update(cluster=cluster, actor=ACTOR, **change)
    latest = ClusterSize.unscoped_all_tenants.filter(cluster=cluster).latest("id")
    ClusterSize.unscoped_all_tenants.filter(pk=latest.pk).update(since=when)


def delete(cluster: Cluster, *, when: datetime) -> None:
    Cluster.unscoped_all_tenants.filter(pk=cluster.pk).update(deleted_at=when)


def rows(cluster: Cluster, dimension: str) -> dict[int, tuple[int, bool]]:
    """The ledger's hours of one dimension, by hour of the day: (quantity, complete)."""
    return {
        row.hour.hour: (row.quantity, row.complete)
        for row in UsageHour.unscoped_all_tenants.filter(cluster=cluster, dimension=dimension)
    }


def test_a_standard_cluster_counts_every_hour_it_lived_at_any_moment():
    cluster = new_cluster("standard", created=at(10, 20))
    delete(cluster, when=at(13, 5))
    assert not cluster.cell.prometheus_url  # a cell without metrics still gets them

    metering.collect_cell(cluster.cell, now=at(15))

    # 10:20 to 13:05 touches the hours of 10, 11, 12 and 13: 4 cluster-hours, each complete
    # as soon as it is over (Sluice's own record is all there is to wait for).
    assert rows(cluster, CLUSTER_HOURS) == {
        10: (1, True),
        11: (1, True),
        12: (1, True),
        13: (1, True),
    }
    assert sum(quantity for quantity, _ in rows(cluster, CLUSTER_HOURS).values()) == 4
    assert rows(cluster, UNIT_HOURS) == {}  # Standard is not priced by capacity units


def test_a_resize_inside_an_hour_counts_the_larger_size_for_that_hour():
    cluster = new_cluster("dedicated", created=at(10, 15), units=2)
    reshape(cluster, when=at(11, 30), capacity_units=4)
    reshape(cluster, when=at(12, 10), capacity_units=3)

    metering.collect_cell(cluster.cell, now=at(13, 30))
    # 10:00 hour: 2 units; 11:00: 2 then 4 from 11:30, so 4; 12:00: 4 until 12:10 then 3,
    # so 4 (the larger); 13:00: 3, not over yet at 13:30.
    assert rows(cluster, UNIT_HOURS) == {
        10: (2, True),
        11: (4, True),
        12: (4, True),
        13: (3, False),
    }

    metering.collect_cell(cluster.cell, now=at(14))
    expected = {10: (2, True), 11: (4, True), 12: (4, True), 13: (3, True)}
    assert rows(cluster, UNIT_HOURS) == expected
    # 2 + 4 + 4 + 3 = 13 capacity-unit-hours; Dedicated has no cluster-hour price.
    assert sum(quantity for quantity, _ in expected.values()) == 13
    assert rows(cluster, CLUSTER_HOURS) == {}

    # Running the same window again (after reopening it) leaves the same rows.
    ledger = list(
        UsageHour.unscoped_all_tenants.filter(cluster=cluster)
        .order_by("dimension", "hour")
        .values_list("dimension", "hour", "quantity", "complete")
    )
    metering.reopen(cluster.cell, at(10))
    metering.collect_cell(cluster.cell, now=at(14))
    metering.collect_cell(cluster.cell, now=at(14))
    assert (
        list(
            UsageHour.unscoped_all_tenants.filter(cluster=cluster)
            .order_by("dimension", "hour")
            .values_list("dimension", "hour", "quantity", "complete")
        )
        == ledger
    )


def test_a_tier_change_inside_an_hour_bills_each_tier_in_force_its_own_dimension():
    cluster = new_cluster("standard", created=at(10))
    reshape(cluster, when=at(11, 40), tier_slug="dedicated", capacity_units=2)

    metering.collect_cell(cluster.cell, now=at(13))

    # Standard from 10:00 to 11:40: cluster-hours for 10 and 11. Dedicated (2 units) from
    # 11:40: capacity-unit-hours for 11 and 12. The 11:00 hour counts both.
    assert rows(cluster, CLUSTER_HOURS) == {10: (1, True), 11: (1, True)}
    assert rows(cluster, UNIT_HOURS) == {11: (2, True), 12: (2, True)}


def test_serverless_has_no_hourly_price_and_no_time_rows():
    cluster = new_cluster("serverless", created=at(10, 20))

    metering.collect_cell(cluster.cell, now=at(12))

    assert rows(cluster, Dimension.PARTITION_HOURS) == {10: (0, True), 11: (0, True)}
    assert rows(cluster, CLUSTER_HOURS) == {}
    assert rows(cluster, UNIT_HOURS) == {}


def test_a_tier_meters_a_time_dimension_from_its_first_price_for_it():
    """Which dimension is the tier's price's, not its kind's (Serverless and Standard are the
    same kind): an hourly price added to Serverless from 12:00 meters it from the 12:00 hour,
    the first that ends after the price took effect."""
    cluster = new_cluster("serverless", created=at(10))
    TierPrice.objects.create(
        tier=Tier.objects.get(slug="serverless"),
        dimension=CLUSTER_HOURS,
        micros=100_000,
        effective_from=at(12),
    )

    metering.collect_cell(cluster.cell, now=at(14))

    assert rows(cluster, CLUSTER_HOURS) == {12: (1, True), 13: (1, True)}


def test_the_record_of_sizes_follows_creation_and_reshapes_only():
    cluster, _ = make_cluster(make_org(owner=UserFactory()), tier_slug="dedicated")
    sizes = ClusterSize.unscoped_all_tenants.filter(cluster=cluster)
    first = sizes.get()
    assert (first.tier.slug, first.capacity_units, first.since) == (
        "dedicated",
        1,
        cluster.created_at,
    )
    assert first.organization_id == cluster.organization_id

    with tenant_scope(cluster.organization):
        cluster_services.cluster_update(cluster=cluster, actor=ACTOR, name="renamed")
        assert sizes.count() == 1  # a rename is no reshape
        cluster_services.cluster_update(cluster=cluster, actor=ACTOR, capacity_units=3)
        cluster_services.cluster_update(cluster=cluster, actor=ACTOR, tier_slug="standard")
    assert list(sizes.order_by("id").values_list("tier__slug", "capacity_units")) == [
        ("dedicated", 1),
        ("dedicated", 3),
        ("standard", 1),
    ]


def test_the_backfill_gives_each_existing_cluster_its_current_size_since_creation():
    cluster = new_cluster("dedicated", created=at(9), units=2)
    reshape(cluster, when=at(10), capacity_units=5)
    ClusterSize.unscoped_all_tenants.all().delete()
    name = "0015_cluster_size_history"
    migration = importlib.import_module(f"clusters.migrations.{name}")
    # The models as the migration sees them (its historical state), not today's.
    state = MigrationExecutor(connection).loader.project_state(("clusters", name))

    migration.record_existing_clusters(state.apps, None)

    size = ClusterSize.unscoped_all_tenants.get(cluster=cluster)
    assert (size.capacity_units, size.since, size.tier_id) == (5, at(9), cluster.tier_id)


def test_usage_reads_the_time_dimensions_with_their_units_and_completeness():
    dedicated = new_cluster("dedicated", created=at(10, 15), units=2)
    reshape(dedicated, when=at(11, 30), capacity_units=4)
    serverless = new_cluster("serverless", created=at(10))
    metering.collect_cell(dedicated.cell, now=at(13))
    window = selectors.usage_window(granularity="hour", start=at(10), end=at(13))

    with tenant_scope(dedicated.organization):
        usage = selectors.cluster_usage(
            cluster=dedicated, window=window, dimensions=[UNIT_HOURS, CLUSTER_HOURS]
        )
    units, cluster_hours = usage.dimensions
    assert (units.unit, units.limit_per_bucket) == ("capacity-unit-hours", None)
    assert [(b.quantity, b.complete) for b in units.buckets] == [(2, True), (4, True), (4, True)]
    # A Dedicated cluster's cluster-hours are not missing: they do not apply.
    assert cluster_hours.unit == "cluster-hours"
    assert [(b.quantity, b.complete) for b in cluster_hours.buckets] == [(0, True)] * 3

    with tenant_scope(serverless.organization):
        usage = selectors.cluster_usage(cluster=serverless, window=window)
    by_dimension = {d.dimension: d for d in usage.dimensions}
    assert [b.complete for b in by_dimension[CLUSTER_HOURS].buckets] == [True] * 3

    # A bucket whose hour the ledger does not hold yet is not complete.
    later = selectors.usage_window(granularity="hour", start=at(13), end=at(14))
    with tenant_scope(dedicated.organization):
        usage = selectors.cluster_usage(cluster=dedicated, window=later, dimensions=[UNIT_HOURS])
    assert [(b.quantity, b.complete) for b in usage.dimensions[0].buckets] == [(0, False)]

    assert usage_amount(10, "capacity-unit-hours") == "10 capacity-unit-hours"
    assert usage_amount(1, "cluster-hours") == "1 cluster-hour"


def test_the_usage_panel_shows_a_time_dimension_the_cluster_has():
    cluster, _ = make_cluster(make_org(owner=UserFactory()), tier_slug="standard")
    metering.collect_cell(cluster.cell)  # now: the current hour, 1 cluster-hour so far

    with tenant_scope(cluster.organization):
        panel = cluster_usage_panel(cluster)

    labels = [row["label"] for row in panel["rows"]]
    assert labels == [
        "Ingress (written)",
        "Egress (read)",
        "Storage",
        "Partition hours",
        "Cluster hours",
    ]
    assert panel["rows"][-1]["total"] == "1 cluster-hour"
