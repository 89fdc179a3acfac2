"""What rating reads (billing/rating_inputs.py), on PostgreSQL: the price versions of the
catalog and the admin, an organization's ledger hours of a period streamed in the order of the
ledger's index, its adjustments; rated, with the amounts worked out by hand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from billing.models import UsageAdjustment
from billing.rating import ADJUSTMENT, USAGE, price_spans, rate
from billing.rating_inputs import adjustment_rows, price_book, tier_history, usage_rows
from billing.services import HourSnapshot, record_hours
from clusters.models import Dimension, Tier, TierPrice
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, make_cluster, make_org

pytestmark = pytest.mark.django_db

GB = 10**9
HOUR = timedelta(hours=1)
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
    now = timezone.now()
    with tenant_scope(organization):
        UsageAdjustment.objects.create(
            organization=organization, cluster=first, dimension=INGRESS, hour=NOVEMBER, quantity=-GB
        )
        spans = price_spans(price_book(), tier_history(organization=organization))
        lines = rate(
            usage_rows(organization=organization, start=NOVEMBER, end=DECEMBER),
            spans,
            adjustment_rows(
                organization=organization,
                created_from=now - HOUR,
                created_until=now + HOUR,
            ),
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


def test_adjustments_outside_the_window_are_not_given(organization, clusters):
    first, _ = clusters
    with tenant_scope(organization):
        UsageAdjustment.objects.create(
            organization=organization, cluster=first, dimension=INGRESS, hour=NOVEMBER, quantity=GB
        )
        later = timezone.now() + HOUR
        rows = adjustment_rows(
            organization=organization, created_from=later, created_until=later + HOUR
        )
        assert list(rows) == []
