"""The tier recommendation (billing/recommendation.py, GET …/clusters/{id}/recommendation/ and
its panel on the cluster page): synthetic ledgers whose answer is worked out by hand at the
catalog's prices (a Standard cluster cheaper on Serverless, one that must stay, a Dedicated one
over-sized, not enough history), agreement with the invoice of the same hours, who may read it,
and one organization never reading another's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings

from billing.closing import Outcome, invoice_close
from billing.models import Invoice
from billing.recommendation import Verdict, recommendation_for
from billing.services import HourSnapshot, record_hours
from clusters.models import Cluster, ClusterSize, Dimension, Tier, TierPrice, Topic
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, add_member, make_cluster, make_org
from tests.support.clients import session_client

pytestmark = pytest.mark.django_db

H = timedelta(hours=1)
GB = 10**9
OCTOBER = datetime(2026, 10, 1, tzinfo=UTC)
SEPTEMBER, SEPTEMBER_16 = datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 9, 16, tzinfo=UTC)
D = Dimension


def since(cluster: Cluster, moment: datetime) -> None:
    """The cluster created, at its tier and size, at ``moment``."""
    ClusterSize.unscoped_all_tenants.filter(cluster=cluster).update(since=moment)
    Cluster.unscoped_all_tenants.filter(pk=cluster.pk).update(created_at=moment)
    cluster.refresh_from_db()


def ledger(cluster, start: datetime, hours: int, hourly: dict, *, complete=True, busiest=None):
    """``hours`` hours from ``start`` of ``hourly`` quantities; ``busiest`` overrides some
    dimensions in the first hour."""
    rows = []
    for n in range(hours):
        quantities = hourly | (busiest or {}) if n == 0 else hourly
        rows += [
            HourSnapshot(cluster.pk, dimension, start + n * H, quantity, complete)
            for dimension, quantity in quantities.items()
        ]
    record_hours(rows)


# Each hour of a small Standard cluster: 1 GB written, 2 GB read, 10 GB stored, 10 partitions.
SMALL_STANDARD = {
    D.INGRESS_BYTES: GB,
    D.EGRESS_BYTES: 2 * GB,
    D.STORAGE_BYTE_HOURS: 10 * GB,
    D.PARTITION_HOURS: 10,
    D.CLUSTER_HOURS: 1,
}


def recommended(cluster: Cluster):
    with tenant_scope(cluster.organization):
        return recommendation_for(cluster=cluster)


def options_of(recommendation) -> list[tuple]:
    return [
        (o.tier.slug, o.capacity_units, o.window_cents, o.monthly_cents)
        for o in recommendation.options
    ]


def url(cluster: Cluster, organization=None) -> str:
    org = (organization or cluster.organization).public_id
    return f"/api/v1/orgs/{org}/clusters/{cluster.public_id}/recommendation/"


@pytest.fixture
def owner():
    return UserFactory()


@pytest.fixture
def small_standard(owner):
    """30 days of a Standard cluster that Serverless could carry for far less."""
    cluster, _ = make_cluster(make_org(owner=owner, name="Thrifty"), tier_slug="standard")
    since(cluster, OCTOBER)
    ledger(cluster, OCTOBER, 720, SMALL_STANDARD)
    return cluster


def test_a_small_standard_cluster_is_told_serverless_saves_521_75_a_month(small_standard):
    recommendation = recommended(small_standard)

    assert recommendation.verdict == Verdict.SWITCH
    assert (recommendation.start, recommendation.end, recommendation.hours) == (
        OCTOBER,
        OCTOBER + 720 * H,
        720,
    )
    assert recommendation.complete_hours == 720
    # Standard as billed: 720 cluster-hours at $0.75 ($540.00), 720 GB in and 1,440 GB out at
    # $0.05 ($36.00, $72.00), 7,200 GB-hours at 110 micro-dollars (79.2 cents: $0.79) and
    # 7,200 partition-hours at $0.001 ($7.20): $655.99; a 730-hour month 65,599 * 730 / 720.
    current = recommendation.current
    assert (current.tier.slug, current.capacity_units, current.window_cents) == (
        "standard",
        1,
        65_599,
    )
    assert current.monthly_cents == 66_510
    # Serverless: 720 GB in at $0.08 ($57.60), out $72.00, storage at 137 micro-dollars
    # (98.64 cents: $0.99), partitions at $0.0015 ($10.80): $141.39, so $143.35 a month.
    # Dedicated, 1 unit: 720 unit-hours at $1.50 ($1,080.00), out at $0.02 ($28.80), storage
    # $0.99: $1,109.79, so $1,125.20 a month.
    assert options_of(recommendation) == [
        ("serverless", 1, 14_139, 14_335),
        ("standard", 1, 65_599, 66_510),
        ("dedicated", 1, 110_979, 112_520),
    ]
    assert recommendation.unfit == ()
    assert recommendation.monthly_saving_cents == 52_175  # $665.10 - $143.35
    # The busiest hour, as MB/s: 1 GB in an hour is 0.277778 MB/s.
    peaks = recommendation.peaks
    assert (str(peaks.ingress_mbps), str(peaks.egress_mbps)) == ("0.277778", "0.555556")
    assert (peaks.partitions, peaks.storage_bytes, peaks.retention_ms) == (10, 10 * GB, 0)


def test_a_busy_hour_over_serverless_with_headroom_keeps_the_cluster_on_standard(owner):
    cluster, _ = make_cluster(make_org(owner=owner, name="Spiky"), tier_slug="standard")
    since(cluster, OCTOBER)
    # One hour writes 90 MB/s (324 GB): under Serverless's 100 MB/s, but not with 20% to spare.
    ledger(cluster, OCTOBER, 720, SMALL_STANDARD, busiest={D.INGRESS_BYTES: 324 * GB})

    recommendation = recommended(cluster)

    assert recommendation.verdict == Verdict.STAY
    assert recommendation.monthly_saving_cents == 0
    assert [(u.tier.slug, u.over) for u in recommendation.unfit] == [("serverless", ["ingress"])]
    # Standard: 1,043 GB in ($52.15) and the rest as above: $672.14, $681.47 a month.
    # Dedicated needs 2 units for 108 MB/s (60 each): 1,440 unit-hours ($2,160.00) + $28.80 +
    # $0.99 = $2,189.79, $2,220.20 a month.
    assert options_of(recommendation) == [
        ("standard", 1, 67_214, 68_147),
        ("dedicated", 2, 218_979, 222_020),
    ]

    # With 10% to spare, 99 MB/s fits Serverless: 1,043 GB in at $0.08 ($83.44) + $72.00 +
    # $0.99 + $10.80 = $167.23, $169.55 a month, saving $511.92.
    with override_settings(SLUICE_RECOMMENDATION_HEADROOM_PERCENT=10):
        loose = recommended(cluster)
    assert loose.verdict == Verdict.SWITCH
    assert options_of(loose)[0] == ("serverless", 1, 16_723, 16_955)
    assert loose.monthly_saving_cents == 51_192


def test_a_topic_kept_longer_than_serverless_allows_keeps_the_cluster_on_standard(
    client, owner, small_standard
):
    """A topic kept 90 days: Serverless keeps 30 at most, so Standard is the cheapest that
    fits, and the page says so."""
    with tenant_scope(small_standard.organization):
        Topic.objects.create(
            organization=small_standard.organization,
            cluster=small_standard,
            name="audit",
            partitions=10,
            retention_ms=90 * 24 * 3_600_000,
        )

    recommendation = recommended(small_standard)

    assert recommendation.verdict == Verdict.STAY
    assert [(u.tier.slug, u.over) for u in recommendation.unfit] == [("serverless", ["retention"])]
    assert options_of(recommendation) == [
        ("standard", 1, 65_599, 66_510),
        ("dedicated", 1, 110_979, 112_520),
    ]
    client.force_login(owner)
    page = client.get(
        f"/orgs/{small_standard.organization.public_id}/clusters/{small_standard.public_id}/"
    ).content.decode()
    assert "Standard is already the cheapest tier that fits: $665.10 a month." in page
    assert "does not fit: retention" in page


def test_an_oversized_dedicated_cluster_is_told_the_fewest_units_that_fit(owner):
    cluster, _ = make_cluster(
        make_org(owner=owner, name="Big"), tier_slug="dedicated", capacity_units=6
    )
    since(cluster, OCTOBER)
    # Every hour 100 MB/s in (360 GB), 500 MB/s out (1,800 GB), 1,000 GB stored, 5,000
    # partitions. With 20%: 120 MB/s in, 600 MB/s out (4 units of 180), 6,000 partitions.
    hourly = {
        D.INGRESS_BYTES: 360 * GB,
        D.EGRESS_BYTES: 1_800 * GB,
        D.STORAGE_BYTE_HOURS: 1_000 * GB,
        D.PARTITION_HOURS: 5_000,
        D.CAPACITY_UNIT_HOURS: 6,
    }
    ledger(cluster, OCTOBER, 720, hourly)

    recommendation = recommended(cluster)

    # 6 units: 4,320 unit-hours at $1.50 ($6,480.00), 1,296,000 GB out at $0.02 ($25,920.00),
    # 720,000 GB-hours at 137 micro-dollars ($98.64): $32,498.64, $32,950.01 a month.
    # 4 units: 2,880 unit-hours ($4,320.00): $30,338.64, $30,760.01 a month.
    assert (recommendation.current.capacity_units, recommendation.current.window_cents) == (
        6,
        3_249_864,
    )
    assert recommendation.current.monthly_cents == 3_295_001
    assert recommendation.verdict == Verdict.SWITCH
    assert options_of(recommendation) == [("dedicated", 4, 3_033_864, 3_076_001)]
    assert [(u.tier.slug, u.over) for u in recommendation.unfit] == [
        ("serverless", ["ingress", "egress", "partitions"]),
        ("standard", ["partitions"]),
    ]
    assert recommendation.monthly_saving_cents == 219_000  # $2,190.00


def test_fewer_than_a_week_of_complete_hours_is_not_enough_history(owner):
    cluster, _ = make_cluster(make_org(owner=owner, name="New"), tier_slug="standard")
    since(cluster, OCTOBER)
    ledger(cluster, OCTOBER, 100, SMALL_STANDARD)
    ledger(cluster, OCTOBER + 100 * H, 70, SMALL_STANDARD, complete=False)

    recommendation = recommended(cluster)

    assert recommendation.verdict == Verdict.NOT_ENOUGH_HISTORY
    assert (recommendation.complete_hours, recommendation.required_hours) == (100, 168)
    assert recommendation.options == ()
    assert recommendation.current is None


def test_only_the_hours_at_the_current_tier_and_size_count(small_standard):
    """Made Dedicated at 00:30 on the 26th: the hours from 01:00 on are its history, 119."""
    changed = OCTOBER + 600 * H + timedelta(minutes=30)
    ClusterSize.unscoped_all_tenants.create(
        organization=small_standard.organization,
        cluster=small_standard,
        tier=Tier.objects.get(slug="dedicated"),
        capacity_units=2,
        since=changed,
    )
    recommendation = recommended(small_standard)
    assert recommendation.verdict == Verdict.NOT_ENOUGH_HISTORY
    assert recommendation.complete_hours == 119


def test_the_current_cost_is_what_the_invoice_of_the_same_hours_charges(owner):
    """September 2026 (720 hours) of a Standard cluster, with Standard's ingress cut from
    $0.05 to $0.04 per GB on the 16th: the recommendation's current cost and the month close's
    invoice are the same lines."""
    organization = make_org(owner=owner, name="Agreeing")
    cluster, _ = make_cluster(organization, tier_slug="standard")
    since(cluster, SEPTEMBER)
    TierPrice.objects.create(
        tier=Tier.objects.get(slug="standard"),
        dimension=D.INGRESS_BYTES,
        micros=40_000,
        per_units=GB,
        effective_from=SEPTEMBER_16,
    )
    ledger(cluster, SEPTEMBER, 720, SMALL_STANDARD)

    recommendation = recommended(cluster)
    with tenant_scope(organization):
        closed = invoice_close(
            organization=organization, period_start=SEPTEMBER, now=SEPTEMBER + 722 * H
        )
    invoice = Invoice.unscoped_all_tenants.get(organization=organization, period_start=SEPTEMBER)

    assert closed == Outcome.CLOSED
    assert (recommendation.start, recommendation.end) == (SEPTEMBER, SEPTEMBER + 720 * H)
    # $540.00 + ingress 360 GB at $0.05 ($18.00) and 360 GB at $0.04 ($14.40) + $72.00 +
    # $0.79 + $7.20.
    assert (invoice.total_micros, invoice.total_cents) == (652_392_000, 65_239)
    assert (recommendation.current.window_micros, recommendation.current.window_cents) == (
        invoice.total_micros,
        invoice.total_cents,
    )
    # Standard re-rated on synthetic hours is the same amount again.
    assert ("standard", 1, 65_239, 66_145) in options_of(recommendation)


# The API and the page ---------------------------------------------------------------------


def test_the_api_answers_the_recommendation(owner, small_standard):
    body = session_client(owner).get(url(small_standard)).json()

    assert body["cluster"] == small_standard.public_id
    assert (body["verdict"], body["headroom_percent"]) == ("switch", 20)
    assert (body["complete_hours"], body["required_hours"], body["hours"]) == (720, 168, 720)
    assert (body["period_start"], body["period_end"]) == (
        "2026-10-01T00:00:00Z",
        "2026-10-31T00:00:00Z",
    )
    assert body["current"] == {
        "type": "standard",
        "capacity_units": 1,
        "window_cents": 65_599,
        "monthly_cents": 66_510,
        "monthly_usd": "665.10",
    }
    assert body["recommended"]["type"] == "serverless"
    assert (body["recommended"]["monthly_usd"], body["monthly_saving_usd"]) == ("143.35", "521.75")
    assert body["monthly_saving_cents"] == 52_175
    assert [o["type"] for o in body["options"]] == ["serverless", "standard", "dedicated"]
    assert body["peaks"]["ingress_mbps"] == "0.277778"
    assert body["peaks"]["ingress_bytes_per_hour"] == GB
    assert body["unfit"] == []


def test_not_enough_history_answers_nulls_and_the_hours(owner):
    cluster, _ = make_cluster(make_org(owner=owner, name="Fresh"))
    body = session_client(owner).get(url(cluster)).json()
    assert (body["verdict"], body["complete_hours"], body["required_hours"]) == (
        "not_enough_history",
        0,
        168,
    )
    assert body["current"] is body["recommended"] is body["peaks"] is body["period_start"] is None
    assert (body["options"], body["monthly_saving_cents"]) == ([], 0)


def test_members_who_read_clusters_read_it_and_another_tenant_gets_404(small_standard):
    organization = small_standard.organization
    viewer = add_member(organization, Role.VIEWER).user
    assert session_client(viewer).get(url(small_standard)).status_code == 200
    # The billing role does not read clusters.
    billing = add_member(organization, Role.BILLING).user
    assert session_client(billing).get(url(small_standard)).status_code == 403

    stranger = UserFactory()
    theirs = make_org(owner=stranger, name="Elsewhere")
    client = session_client(stranger)
    for response in (
        client.get(url(small_standard)),  # our organization: not a member
        client.get(url(small_standard, organization=theirs)),  # ours under theirs
    ):
        assert response.status_code == 404
        assert response["Content-Type"] == "application/problem+json"


def test_the_cluster_page_shows_the_recommendation_in_dollars(client, owner, small_standard):
    client.force_login(owner)
    page = client.get(
        f"/orgs/{small_standard.organization.public_id}/clusters/{small_standard.public_id}/"
    ).content.decode()
    panel = page[page.index('id="recommendation"') :]
    panel = panel[: panel.index("</section>")]
    assert "<strong>Serverless</strong>" in panel
    assert "<strong>$143.35</strong> a month instead of $665.10 on Standard" in panel
    assert "$521.75 a month less" in panel
    assert "Dedicated, 1 capacity unit" in panel
    assert "$1,125.20" in panel
    assert "0.277778 MB/s in" in panel
    assert "10 partitions" in panel


def test_the_cluster_page_says_why_there_is_no_recommendation_yet(client, owner):
    cluster, _ = make_cluster(make_org(owner=owner, name="Fresh"))
    since(cluster, OCTOBER)
    ledger(cluster, OCTOBER, 30, SMALL_STANDARD)
    client.force_login(owner)
    page = client.get(
        f"/orgs/{cluster.organization.public_id}/clusters/{cluster.public_id}/"
    ).content.decode()
    assert "Not enough history yet: 30 complete hours at this tier and size, of the 168" in page
