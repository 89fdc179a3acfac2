"""Where an organization's month stands (billing/spend.py): the month so far rated exactly as
the draft invoice is, from a settled tally extended by the hours closed since, the run rate,
the projection and the forecast. Serverless ingress is $0.08 per GB (80,000 micro-dollars per
10^9 bytes), the only dimension written here."""

from datetime import UTC, datetime, timedelta

import pytest

from billing import costs, metering
from billing.models import MeteringCursor, SpendTally
from billing.services import HourSnapshot, record_hours
from billing.spend import SETTLE_EVERY_HOURS, standings
from clusters.models import Cell, ClusterSize, Dimension
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, make_cluster, make_org

pytestmark = pytest.mark.django_db

GB = 10**9
MONTH = datetime(2026, 10, 1, tzinfo=UTC)


@pytest.fixture
def cluster():
    org = make_org(owner=UserFactory(), name="Spender")
    found, _ = make_cluster(org)
    ClusterSize.unscoped_all_tenants.filter(cluster=found).update(since=MONTH - timedelta(days=40))
    return found


def written(cluster, hours: range, quantity: int) -> None:
    record_hours(
        [
            HourSnapshot(
                cluster.pk, Dimension.INGRESS_BYTES, MONTH + timedelta(hours=h), quantity, True
            )
            for h in hours
        ]
    )


def metered_until(moment: datetime) -> None:
    for cell in Cell.objects.all():
        cursor = metering.cursor_for(cell)
        MeteringCursor.objects.filter(pk=cursor.pk).update(watermark=moment)


def standing_at(cluster, moment: datetime):
    return standings([cluster.organization_id], now=moment)[cluster.organization_id]


def test_the_month_so_far_the_run_rate_and_the_forecast(cluster):
    written(cluster, range(10), 1_500_000_000)  # 00:00 to 09:00, 1.5 GB each
    metered_until(MONTH + timedelta(hours=8))

    standing = standing_at(cluster, MONTH + timedelta(hours=10, minutes=30))

    # 15 GB at $0.08: $1.20. The latest whole hour (09:00): 1.5 GB, 120,000 micro-dollars.
    assert standing.month_to_date_micros == 1_200_000
    assert standing.hourly_micros == 120_000
    assert standing.clusters[cluster.pk].month_to_date_micros == 1_200_000
    # Two minutes more at 120,000 an hour: 4,000.
    assert standing.projected_micros(120) == 1_204_000
    # October has 744 hours; 10 have passed (10:30 counts 10 whole): 1,200,000 * 744 / 10.
    assert standing.forecast_micros == 89_280_000
    tally = SpendTally.unscoped_all_tenants.get(organization_id=cluster.organization_id)
    # Settled at the organization's last settle point before the watermark (08:00): one of
    # the hours of one settle period up to it, its phase.
    phase = cluster.organization_id % SETTLE_EVERY_HOURS
    assert tally.settled_through == MONTH + timedelta(hours=8 - (8 - phase) % SETTLE_EVERY_HOURS)


def test_the_tally_extended_rates_as_the_whole_month_does(cluster):
    # 12,345 bytes an hour cost 0.9876 micro-dollars: rated per part and added, the parts would
    # lose what each floors away. The month is rated as one: 10 hours, 123,450 bytes, 9.876 -> 9.
    written(cluster, range(8), 12_345)
    metered_until(MONTH + timedelta(hours=8))
    assert standing_at(cluster, MONTH + timedelta(hours=8, minutes=5)).month_to_date_micros == 7

    written(cluster, range(8, 10), 12_345)
    metered_until(MONTH + timedelta(hours=10))
    later = standing_at(cluster, MONTH + timedelta(hours=10, minutes=5))

    assert later.month_to_date_micros == 9
    with tenant_scope(cluster.organization):
        draft = costs.month_to_date_micros(
            organization=cluster.organization, now=MONTH + timedelta(hours=10, minutes=5)
        )
    assert draft == 9  # the draft invoice's amount: the same lines


def test_hours_recomputed_after_a_watermark_moved_back_are_counted_again(cluster):
    written(cluster, range(6), GB)  # 6 GB: $0.48
    metered_until(MONTH + timedelta(hours=6))
    assert (
        standing_at(cluster, MONTH + timedelta(hours=6, minutes=1)).month_to_date_micros == 480_000
    )

    # Late samples: hour 02:00 held 3 GB, not 1. Metering reopens from there and rewrites it.
    metered_until(MONTH + timedelta(hours=2))
    record_hours(
        [
            HourSnapshot(
                cluster.pk, Dimension.INGRESS_BYTES, MONTH + timedelta(hours=2), 3 * GB, True
            )
        ]
    )
    # 8 GB: $0.64.
    assert (
        standing_at(cluster, MONTH + timedelta(hours=6, minutes=2)).month_to_date_micros == 640_000
    )


def test_a_new_month_starts_from_nothing(cluster):
    written(cluster, range(700, 744), GB)  # the last 44 hours of October
    metered_until(MONTH + timedelta(hours=744))

    november = standing_at(cluster, datetime(2026, 11, 1, 0, 30, tzinfo=UTC))

    assert november.period_start == datetime(2026, 11, 1, tzinfo=UTC)
    assert (november.month_to_date_micros, november.hourly_micros) == (0, 0)


def test_the_run_rate_is_read_when_metering_is_only_minutes_behind(cluster):
    # As in production: the watermark trails the clock by the lateness allowed (5 minutes).
    written(cluster, range(10), 1_500_000_000)
    written(cluster, range(10, 11), 500_000_000)  # the hour going on
    metered_until(MONTH + timedelta(hours=10, minutes=25))

    standing = standing_at(cluster, MONTH + timedelta(hours=10, minutes=30))

    # The latest whole hour (09:00) is never settled away: 1.5 GB, 120,000 micro-dollars.
    assert standing.hourly_micros == 120_000
    # 15.5 GB: $1.24.
    assert standing.month_to_date_micros == 1_240_000
    tally = SpendTally.unscoped_all_tenants.get(organization_id=cluster.organization_id)
    # Never the latest whole hour (09:00), whatever the organization's settle phase.
    assert tally.settled_through <= MONTH + timedelta(hours=9)


def test_the_spend_check_after_metering_fires_budget_alerts_once(cluster):
    from billing.budgets import budget_set
    from billing.models import BudgetAlert
    from billing.spend_watch import organizations_to_check, spend_check
    from tenants.audit import Actor

    with tenant_scope(cluster.organization):
        budget_set(
            organization=cluster.organization, actor=Actor(system="tests"), monthly_micros=10**6
        )
    written(cluster, range(10), 1_250_000_000)  # 12.5 GB: $1.00, the whole budget
    metered_until(MONTH + timedelta(hours=10))
    at = MONTH + timedelta(hours=10, minutes=30)

    assert organizations_to_check(cell_id=cluster.cell_id) == [cluster.organization_id]
    first = spend_check(organization_ids=organizations_to_check(), now=at)
    again = spend_check(organization_ids=organizations_to_check(), now=at)

    # 50, 80 and 100 percent, and the forecast ($1.00 in 10 hours: $74.40 by the month's end).
    assert (first.alerts_fired, again.alerts_fired) == (4, 0)
    assert sorted(BudgetAlert.unscoped_all_tenants.values_list("threshold", flat=True)) == [
        "100",
        "50",
        "80",
        "forecast",
    ]


def test_every_settle_phase_gives_the_draft_invoices_amount(cluster):
    """Tallies settle at different hours (the phase of their batch's first organization): six
    organizations, every phase at least once, each checked on its own (a batch of one) three
    times as the month goes on, agree with the draft each time."""
    clusters = [cluster]
    for n in range(5):
        other, _ = make_cluster(make_org(owner=UserFactory(), name=f"Phase {n}"))
        ClusterSize.unscoped_all_tenants.filter(cluster=other).update(
            since=MONTH - timedelta(days=40)
        )
        clusters.append(other)
    assert {c.organization_id % SETTLE_EVERY_HOURS for c in clusters} == set(
        range(SETTLE_EVERY_HOURS)
    )
    for hours in (7, 15, 23):
        for index, each in enumerate(clusters):
            written(each, range(hours - 7, hours + 1), 12_345 * (index + 1))
        metered_until(MONTH + timedelta(hours=hours, minutes=25))
        at = MONTH + timedelta(hours=hours, minutes=30)
        found = {}
        for each in clusters:
            found.update(standings([each.organization_id], now=at))
        for each in clusters:
            with tenant_scope(each.organization):
                draft = costs.month_to_date_micros(organization=each.organization, now=at)
            assert found[each.organization_id].month_to_date_micros == draft
        # 24 hours of 12,345 bytes at 80,000 per 10^9 bytes: 23.70 micro-dollars, so 23, for
        # the first; six times as much for the last: 142.2, so 142.
    assert found[clusters[0].organization_id].month_to_date_micros == 23
    assert found[clusters[-1].organization_id].month_to_date_micros == 142
