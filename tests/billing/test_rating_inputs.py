"""What rating reads (billing/rating_inputs.py), on PostgreSQL: the price versions of the
catalog and the admin, an organization's ledger hours of a period streamed in the order of the
ledger's index, its adjustments; rated, with the amounts worked out by hand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from billing.models import UsageAdjustment
from billing.rating import ADJUSTMENT, USAGE, price_spans, rate
from billing.rating_inputs import adjustment_rows, price_book, tier_history, usage_rows
from billing.services import HourSnapshot, record_hours
from clusters.models import ClusterSize, Dimension, Tier, TierPrice
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, make_cluster, make_org

pytestmark = pytest.mark.django_db

GB = 10**9
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
SEPTEMBER = datetime(2026, 9, 1, tzinfo=UTC)
NOVEMBER = datetime(2026, 11, 1, tzinfo=UTC)
DECEMBER = datetime(2026, 12, 1, tzinfo=UTC)
PRICE_CUT = datetime(2026, 11, 15, tzinfo=UTC)
INGRESS = Dimension.INGRESS_BYTES


def ingress(cluster, hour: datetime, quantity: int) -> HourSnapshot:
    return HourSnapshot(
        cluster_id=cluster.pk, dimension=INGRESS, hour=hour, quantity=quantity, complete=True
    )


@pytest.fixture
def organization():
    return make_org(owner=UserFactory())


@pytest.fixture
def clusters(organization):
    """Two serverless clusters with ingress around November, and another organization's."""
    first, _ = make_cluster(organization, name="first")
    second, _ = make_cluster(organization, name="second")
    elsewhere, _ = make_cluster(make_org(owner=UserFactory(), name="Other"), name="first")
    # Made in September, as the ledger hours below need: their tier is on record from then.
    ClusterSize.unscoped_all_tenants.filter(cluster__in=[first, second, elsewhere]).update(
        since=SEPTEMBER
    )
    record_hours(
        [
            ingress(second, NOVEMBER - HOUR, 9 * GB),  # October: not in the period
            ingress(second, NOVEMBER + 5 * HOUR, 4 * GB),
            ingress(first, PRICE_CUT + 40 * HOUR, 2 * GB),
            ingress(first, NOVEMBER, 5 * GB),
            ingress(first, DECEMBER, 7 * GB),  # December: not in the period
            ingress(elsewhere, NOVEMBER, 100 * GB),  # another organization's
        ]
    )
    # The serverless ingress price is cut from $0.08 to $0.06 per GB on 15 November.
    TierPrice.objects.create(
        tier=Tier.objects.get(slug="serverless"),
        dimension=INGRESS,
        micros=60_000,
        per_units=GB,
        effective_from=PRICE_CUT,
    )
    return first, second


def test_usage_rows_stream_the_period_of_one_organization_by_cluster(organization, clusters):
    first, second = clusters
    with tenant_scope(organization):
        rows = usage_rows(organization=organization, start=NOVEMBER, end=DECEMBER, chunk_size=2)
        assert isinstance(rows, Iterator)
        assert list(rows) == [
            (first.pk, INGRESS, NOVEMBER, 5 * GB),
            (first.pk, INGRESS, PRICE_CUT + 40 * HOUR, 2 * GB),
            (second.pk, INGRESS, NOVEMBER + 5 * HOUR, 4 * GB),
        ]


def test_november_rated_from_the_database(organization, clusters):
    # first: 5 GB on 1 November at $0.08 = 400,000 micro-dollars (40 cents), 2 GB on 16
    # November at $0.06 = 120,000 (12 cents); second: 4 GB on 1 November at $0.08 = 320,000
    # (32 cents). An adjustment of -1 GB to first's 1 November hour, made now, is rated at that
    # hour's $0.08: -80,000 (-8 cents).
    first, second = clusters
    with tenant_scope(organization):
        UsageAdjustment.objects.create(
            organization=organization, cluster=first, dimension=INGRESS, hour=NOVEMBER, quantity=-GB
        )
        spans = price_spans(price_book(), tier_history(organization=organization))
        lines = rate(
            usage_rows(organization=organization, start=NOVEMBER, end=DECEMBER),
            spans,
            adjustment_rows(organization=organization, billed_period_start=None),
        )

    assert [
        (line.kind, line.cluster, line.price.effective_from, line.quantity, line.micros, line.cents)
        for line in lines
    ] == [
        (USAGE, first.pk, datetime(2026, 1, 1, tzinfo=UTC), 5 * GB, 400_000, 40),
        (USAGE, first.pk, PRICE_CUT, 2 * GB, 120_000, 12),
        (USAGE, second.pk, datetime(2026, 1, 1, tzinfo=UTC), 4 * GB, 320_000, 32),
        (ADJUSTMENT, first.pk, datetime(2026, 1, 1, tzinfo=UTC), -GB, -80_000, -8),
    ]
    assert {line.price.tier for line in lines} == {first.tier_id}
    assert {line.remainder_micros for line in lines} == {0}


def test_adjustments_billed_on_another_month_are_not_given(organization, clusters):
    first, _ = clusters
    with tenant_scope(organization):
        UsageAdjustment.objects.create(
            organization=organization,
            cluster=first,
            dimension=INGRESS,
            hour=NOVEMBER,
            quantity=GB,
            billed_period_start=DECEMBER,
        )
        assert list(adjustment_rows(organization=organization, billed_period_start=None)) == []
        assert list(adjustment_rows(organization=organization, billed_period_start=NOVEMBER)) == []
        assert [
            quantity
            for *_, quantity in adjustment_rows(
                organization=organization, billed_period_start=DECEMBER
            )
        ] == [GB]


def test_a_change_of_tier_inside_an_hour_bills_each_dimension_at_the_tier_that_metered_it(
    organization,
):
    # Standard from 10:20, Dedicated (2 units) from 11:40 on 2 November, as metering counts it:
    # cluster-hours for the hours of 10 and 11 at Standard's $0.75 = 1,500,000 micro-dollars;
    # capacity-unit-hours 2 for the hours of 11 and 12 at Dedicated's $1.50 = 6,000,000; 1 GB
    # written in the hour of 11 at the latest tier of that hour pricing ingress, Standard's
    # $0.05 = 50,000 (Dedicated prices no ingress). A resize within Dedicated is no new tier.
    standard, dedicated = Tier.objects.get(slug="standard"), Tier.objects.get(slug="dedicated")
    cluster, _ = make_cluster(organization, tier_slug="standard", name="moving")
    day = datetime(2026, 11, 2, tzinfo=UTC)
    with tenant_scope(organization):
        ClusterSize.objects.filter(cluster=cluster).update(since=day + 10 * HOUR + 20 * MINUTE)
        for since, tier, units in (
            (day + 11 * HOUR + 40 * MINUTE, dedicated, 2),
            (day + 12 * HOUR + 30 * MINUTE, dedicated, 3),
        ):
            ClusterSize.objects.create(
                organization=organization,
                cluster=cluster,
                tier=tier,
                capacity_units=units,
                since=since,
            )

        def hour(at, dimension, quantity):
            return HourSnapshot(
                cluster_id=cluster.pk,
                dimension=dimension,
                hour=at,
                quantity=quantity,
                complete=True,
            )

        record_hours(
            [
                hour(day + 10 * HOUR, Dimension.CLUSTER_HOURS, 1),
                hour(day + 11 * HOUR, Dimension.CLUSTER_HOURS, 1),
                hour(day + 11 * HOUR, Dimension.CAPACITY_UNIT_HOURS, 2),
                hour(day + 12 * HOUR, Dimension.CAPACITY_UNIT_HOURS, 2),
                hour(day + 11 * HOUR, INGRESS, GB),
            ]
        )
        lines = rate(
            usage_rows(organization=organization, start=NOVEMBER, end=DECEMBER),
            price_spans(price_book(), tier_history(organization=organization)),
        )

    assert [(line.dimension, line.price.tier, line.quantity, line.micros) for line in lines] == [
        (Dimension.CAPACITY_UNIT_HOURS, dedicated.pk, 4, 6_000_000),
        (Dimension.CLUSTER_HOURS, standard.pk, 2, 1_500_000),
        (INGRESS, standard.pk, GB, 50_000),
    ]
