"""What clusters cost per day (billing/costs.py and GET /api/v1/orgs/{org}/costs/): each day
rated on its own by the one rating function, with the amounts worked out by hand; a day's
completeness from the metering watermark and the ledger; the query's validation; who may read;
and one organization never seeing another's clusters."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from billing import costs
from billing.models import MeteringCursor
from billing.presentation import usd
from billing.services import HourSnapshot, record_hours
from clusters.models import Cluster, ClusterSize, Dimension, Tier, TierPrice
from foundation.errors import InvalidInput
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, add_member, make_cluster, make_org
from tests.support.clients import session_client

pytestmark = pytest.mark.django_db

H = timedelta(hours=1)
DAY = timedelta(days=1)
GB = 10**9
OCT1 = datetime(2026, 10, 1, tzinfo=UTC)
NOV2 = datetime(2026, 11, 2, tzinfo=UTC)
NOV3 = datetime(2026, 11, 3, tzinfo=UTC)
NOV4 = datetime(2026, 11, 4, tzinfo=UTC)
INGRESS, STORAGE = Dimension.INGRESS_BYTES, Dimension.STORAGE_BYTE_HOURS
PARTITIONS = Dimension.PARTITION_HOURS


def record(cluster, dimension, quantities: dict[datetime, int], *, complete: bool = True):
    record_hours(
        [
            HourSnapshot(cluster.pk, dimension, hour, quantity, complete)
            for hour, quantity in quantities.items()
        ]
    )


def since_october(*clusters: Cluster) -> None:
    """Their tier on record from October, as ledger hours of November need."""
    ClusterSize.unscoped_all_tenants.filter(cluster__in=clusters).update(since=OCT1)


@pytest.fixture
def org():
    return make_org(owner=UserFactory(), name="Costly")


@pytest.fixture
def events(org):
    """A Serverless cluster's 2 and 3 November, at $0.08 per GB written (cut to $0.06 at noon
    on the 3rd), $0.0015 per partition-hour, 137 micro-dollars per GB-hour stored."""
    cluster, _ = make_cluster(org, name="events")
    since_october(cluster)
    TierPrice.objects.create(
        tier=Tier.objects.get(slug="serverless"),
        dimension=INGRESS,
        micros=60_000,
        per_units=GB,
        effective_from=NOV3 + 12 * H,
    )
    record(cluster, INGRESS, {NOV2 + 9 * H: 1_234_567_891, NOV2 + 10 * H: 1_234_567_891})
    record(cluster, INGRESS, {NOV2 + 11 * H: 1_234_567_891})
    record(cluster, INGRESS, {NOV3 + 10 * H: 500_000_001, NOV3 + 14 * H: 2 * GB})
    record(cluster, PARTITIONS, {NOV2 + n * H: 3 for n in range(24)})
    record(cluster, STORAGE, {NOV2: 1_500_000_000, NOV3: 1_500_000_000})
    return cluster


def url(org, **query) -> str:
    base = f"/api/v1/orgs/{org.public_id}/costs/"
    return base + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def owner_client(org):
    return session_client(add_member(org, Role.OWNER).user)


def test_each_day_is_rated_on_its_own_with_the_amounts_written_out(org, events):
    # 2 November: 3 x 1,234,567,891 = 3,703,703,673 bytes at 80,000 micro-dollars per 10^9
    #   = 296,296.29384 -> 296,296; 24 hours x 3 partitions = 72 partition-hours at 1,500
    #   = 108,000; 1,500,000,000 byte-hours at 137 per 10^9 = 205.5 -> 205.
    # 3 November: 500,000,001 bytes at 10:00 at 80,000 per 10^9 = 40,000.00008 -> 40,000;
    #   2 GB at 14:00, after the cut to 60,000, = 120,000 (a row of its own); storage 205.
    response = owner_client(org).get(url(org, start="2026-11-02", end="2026-11-04"))

    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("start", "end", "granularity", "currency")} == {
        "start": "2026-11-02",
        "end": "2026-11-04",
        "granularity": "day",
        "currency": "usd",
    }
    assert [
        (
            row["date"],
            row["dimension"],
            row["quantity"],
            row["unit_price_micros"],
            row["amount_micros"],
            row["amount_usd"],
        )
        for row in body["costs"]
    ] == [
        ("2026-11-02", "ingress_bytes", 3_703_703_673, 80_000, 296_296, "0.296296"),
        ("2026-11-02", "partition_hours", 72, 1_500, 108_000, "0.108000"),
        ("2026-11-02", "storage_byte_hours", 1_500_000_000, 137, 205, "0.000205"),
        ("2026-11-03", "ingress_bytes", 500_000_001, 80_000, 40_000, "0.040000"),
        ("2026-11-03", "ingress_bytes", 2 * GB, 60_000, 120_000, "0.120000"),
        ("2026-11-03", "storage_byte_hours", 1_500_000_000, 137, 205, "0.000205"),
    ]
    # 296,296 + 108,000 + 205 + 40,000 + 120,000 + 205 = 564,706
    assert (body["total_micros"], body["total_usd"]) == (564_706, "0.564706")
    first = body["costs"][0]
    assert first | {"complete": None} == {
        "date": "2026-11-02",
        "cluster_id": events.public_id,
        "cluster_name": "events",
        "tier": "serverless",
        "dimension": "ingress_bytes",
        "unit": "bytes",
        "quantity": 3_703_703_673,
        "unit_price_micros": 80_000,
        "per_units": GB,
        "unit_price_usd": "0.080000",
        "amount_micros": 296_296,
        "amount_usd": "0.296296",
        "complete": None,
        "estimated": False,
    }


def test_days_floored_on_their_own_may_add_up_to_less_than_the_month(org, events):
    # Storage: 205.5 micro-dollars each day, floored to 205 twice = 410; the month rated as one
    # line is 3,000,000,000 byte-hours at 137 per 10^9 = 411. The invoice is the bill.
    with tenant_scope(org):
        days = costs.daily_costs(organization=org, start=NOV2.date(), end=NOV4.date())
        month = costs.month_to_date(organization=org, now=datetime(2026, 11, 15, tzinfo=UTC))
    assert sum(row.amount_micros for row in days if row.dimension == STORAGE) == 410
    [storage] = [row for row in month[0].rows if row.dimension == STORAGE]
    assert (storage.quantity, storage.amount_micros) == (3_000_000_000, 411)


def test_a_day_is_complete_once_metering_closed_it_and_estimated_where_an_hour_lacks_samples(
    org, events
):
    record(events, INGRESS, {NOV2 + 11 * H: 1_234_567_891}, complete=False)  # samples missing
    MeteringCursor.objects.create(cell=events.cell, watermark=NOV3 + 12 * H)

    with tenant_scope(org):
        rows = costs.daily_costs(organization=org, start=NOV2.date(), end=NOV4.date())

    assert [(row.day.day, row.dimension, row.complete, row.estimated) for row in rows] == [
        (2, INGRESS, False, True),  # closed, but 11:00 is incomplete
        (2, PARTITIONS, True, False),
        (2, STORAGE, True, False),
        (3, INGRESS, False, False),  # metering has not closed the whole day yet
        (3, INGRESS, False, False),
        (3, STORAGE, False, False),
    ]


def test_one_cluster_only(org, events):
    other, _ = make_cluster(org, name="other")
    since_october(other)
    record(other, INGRESS, {NOV2: GB})  # 80,000 micro-dollars
    client = owner_client(org)

    everything = client.get(url(org, start="2026-11-02", end="2026-11-03")).json()
    only_other = client.get(
        url(org, start="2026-11-02", end="2026-11-03", cluster=other.public_id)
    ).json()

    assert {row["cluster_name"] for row in everything["costs"]} == {"events", "other"}
    assert [(row["cluster_name"], row["amount_micros"]) for row in only_other["costs"]] == [
        ("other", 80_000)
    ]
    assert only_other["total_micros"] == 80_000


def test_a_deleted_cluster_still_has_its_costs(org, events):
    Cluster.unscoped_all_tenants.filter(pk=events.pk).update(deleted_at=NOV4)
    body = owner_client(org).get(url(org, start="2026-11-02", end="2026-11-03")).json()
    assert body["total_micros"] == 296_296 + 108_000 + 205


def test_another_organizations_clusters_never_show(org, events):
    other_org = make_org(owner=UserFactory(), name="Elsewhere")
    theirs, _ = make_cluster(other_org, name="theirs")
    since_october(theirs)
    record(theirs, INGRESS, {NOV2: 7 * GB})
    client = owner_client(other_org)

    body = client.get(url(other_org, start="2026-11-02", end="2026-11-04")).json()
    assert [(row["cluster_id"], row["amount_micros"]) for row in body["costs"]] == [
        (theirs.public_id, 560_000)
    ]
    asking_for_ours = client.get(url(other_org, start="2026-11-02", cluster=events.public_id))
    assert asking_for_ours.status_code == 400
    assert list(asking_for_ours.json()["errors"]) == ["cluster"]
    assert client.get(url(org)).status_code == 404  # not a member of ours


def test_the_default_is_the_current_month_to_date():
    assert costs.cost_range(today=date(2026, 11, 30)) == (date(2026, 11, 1), date(2026, 12, 1))
    assert costs.cost_range(today=date(2026, 12, 1)) == (date(2026, 12, 1), date(2026, 12, 2))
    assert costs.cost_range(end=date(2026, 3, 1), today=date(2026, 11, 30)) == (
        date(2026, 2, 1),
        date(2026, 3, 1),
    )
    assert costs.cost_range(start=date(2026, 11, 20), today=date(2026, 11, 30)) == (
        date(2026, 11, 20),
        date(2026, 12, 1),
    )


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"start": "yesterday"}, "start"),
        ({"start": "2026-11-2"}, "start"),
        ({"start": "2026-11-02T00:00:00Z"}, "start"),
        ({"start": "2026-02-30"}, "start"),
        ({"start": "\u0662\u0660\u0662\u0666-11-01"}, "start"),  # Arabic-Indic digits
        ({"start": "\uff12\uff10\uff12\uff16-11-01"}, "start"),  # full-width digits
        ({"start": "1969-12-31"}, "start"),
        ({"start": ""}, "start"),
        ({"end": "10000-01-01"}, "end"),
        ({"end": "9999-01-01"}, "end"),
        ({"start": "2026-11-03", "end": "2026-11-02"}, "end"),
        ({"start": "2026-11-03", "end": "2026-11-03"}, "end"),
        ({"start": "2026-08-01", "end": "2026-11-01"}, "end"),  # 92 days
        ({"start": "2026-11-01", "end": "2026-12-03"}, "end"),  # 32 days
        ({"granularity": "hour"}, "granularity"),
        ({"cluster": "kc_nonesuch"}, "cluster"),
        ({"cluster": "kc_a\x00"}, "cluster"),
    ],
)
def test_an_invalid_query_is_a_validation_problem_naming_the_parameter(org, query, field):
    response = owner_client(org).get(f"/api/v1/orgs/{org.public_id}/costs/", query)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert (problem["code"], list(problem["errors"])) == ("validation", [field])


def test_the_longest_range_is_31_days(org, events):
    response = owner_client(org).get(url(org, start="2026-11-01", end="2026-12-02"))
    assert response.status_code == 200
    assert response.json()["total_micros"] == 564_706


def test_iso_date_takes_only_ascii_dates_from_1970():
    assert costs.iso_date("2026-11-02", field="start") == date(2026, 11, 2)
    assert costs.iso_date("9998-12-31", field="end") == date(9998, 12, 31)
    for text in ("2026-13-01", " 2026-11-02", "2026-11-02\n", None, 20261102):
        with pytest.raises(InvalidInput):
            costs.iso_date(text, field="start")


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (Role.OWNER, 200),
        (Role.ADMIN, 200),
        (Role.BILLING, 200),
        (Role.DEVELOPER, 403),
        (Role.VIEWER, 403),
    ],
)
def test_the_roles_that_read_invoices_read_costs(org, role, status):
    client = session_client(add_member(org, role).user)
    assert client.get(url(org)).status_code == status


# The Billing tab -----------------------------------------------------------------------------


def this_month() -> datetime:
    return timezone.now().astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def test_the_billing_tab_shows_each_clusters_month_so_far_as_its_invoice_lines_will(org):
    # events: 15,432,098,625,000 bytes written at 80,000 micro-dollars per 10^9 = 1,234,567,890
    #   micro-dollars = 123,456.789 cents -> 123,457 = $1,234.57; 3 partitions for 10 hours =
    #   30 partition-hours at 1,500 = 45,000 micro-dollars = 4.5 cents -> 4 (half to even).
    #   Total $1,234.61.
    # gone (deleted since): 1 GB read at 50,000 per 10^9 = 5 cents. quiet: nothing, no row.
    events, _ = make_cluster(org, name="events")
    gone, _ = make_cluster(org, name="gone")
    make_cluster(org, name="quiet")
    start = this_month()
    ClusterSize.unscoped_all_tenants.filter(organization=org).update(since=start - 40 * DAY)
    record(events, INGRESS, {start: 15_432_098_625_000})
    record(events, PARTITIONS, {start + n * H: 3 for n in range(9)})
    record(events, PARTITIONS, {start + 9 * H: 3}, complete=False)  # samples missing
    record(gone, Dimension.EGRESS_BYTES, {start + H: GB})
    record(events, INGRESS, {start - H: 10**15})  # last month: not in
    Cluster.unscoped_all_tenants.filter(pk=gone.pk).update(deleted_at=start + 2 * H)
    MeteringCursor.objects.create(cell=events.cell, watermark=start + 12 * H)

    response = session_client(add_member(org, Role.BILLING).user).get(
        f"/orgs/{org.public_id}/billing/"
    )

    assert response.status_code == 200
    table = response.context["month_to_date"]
    assert table["columns"] == ["Ingress (written)", "Egress (read)", "Partition hours"]
    assert [
        (
            row["cluster_name"],
            row["total"],
            row["estimated"],
            [(c["amount"], c["estimated"]) for c in row["cells"]],
        )
        for row in table["rows"]
    ] == [
        ("events", "$1,234.61", True, [("$1,234.57", False), ("", False), ("$0.04", True)]),
        ("gone", "$0.05", False, [("", False), ("$0.05", False), ("", False)]),
    ]
    assert table["total"] == "$1,234.66"
    html = response.content.decode()
    assert '<strong>$1,234.61</strong> <span class="muted small-print">estimated</span>' in html
    assert "Payments are not collected here" in html


def test_the_billing_tab_states_the_free_allowance_without_a_payment_method(
    org, settings, stripe_standin
):
    settings.STRIPE_API_KEY = "sk_test_sluice_tab"
    settings.STRIPE_API_BASE = stripe_standin.url
    client = session_client(add_member(org, Role.OWNER).user)

    html = client.get(f"/orgs/{org.public_id}/billing/").content.decode()

    assert "Serverless may be used up to $10.00 a month, invoiced to the billing e-mail" in html
    assert "Payments are not collected here" not in html
    assert "Nothing used this month yet." in html
    assert stripe_standin.requests == []


def test_dollars_read_with_thousands_separators():
    assert [usd(c) for c in (0, 5, 100, 123_456, 123_456_789, -1_234_567)] == [
        "$0.00",
        "$0.05",
        "$1.00",
        "$1,234.56",
        "$1,234,567.89",
        "-$12,345.67",
    ]
