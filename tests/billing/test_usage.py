"""Usage charts over the ledger: buckets by UTC hour and day, completeness, adjustments, tier
limits, and the API that serves them (validation, roles, isolation)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from billing import selectors
from billing.models import UsageAdjustment
from billing.services import HourSnapshot, record_hours
from clusters.models import METERED_DIMENSIONS, Cluster, Dimension
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.factories import (
    UserFactory,
    add_member,
    close_month_of,
    make_api_key,
    make_cluster,
    make_org,
)
from tests.support.clients import key_client, session_client

pytestmark = pytest.mark.django_db

H = timedelta(hours=1)
NOV1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV2 = NOV1 + timedelta(days=1)
NOV3 = NOV1 + timedelta(days=2)
GB = 10**9
INGRESS, EGRESS = Dimension.INGRESS_BYTES, Dimension.EGRESS_BYTES
STORAGE, PARTITIONS = Dimension.STORAGE_BYTE_HOURS, Dimension.PARTITION_HOURS


def record(cluster, dimension, quantities: dict[datetime, int], *, complete: bool = True):
    record_hours(
        [
            HourSnapshot(cluster.pk, dimension, hour, quantity, complete)
            for hour, quantity in quantities.items()
        ]
    )


def hours(start: datetime, count: int, quantity: int = 1) -> dict[datetime, int]:
    return {start + index * H: quantity for index in range(count)}


def lived(cluster, born: datetime, died: datetime | None = None) -> Cluster:
    Cluster.unscoped_all_tenants.filter(pk=cluster.pk).update(created_at=born, deleted_at=died)
    cluster.refresh_from_db()
    return cluster


def window(granularity: str, start: datetime, end: datetime) -> selectors.UsageWindow:
    return selectors.usage_window(granularity=granularity, start=start, end=end)


def of_cluster(cluster, granularity, start, end, dimensions=None) -> selectors.Usage:
    with tenant_scope(cluster.organization):
        return selectors.cluster_usage(
            cluster=cluster, window=window(granularity, start, end), dimensions=dimensions
        )


def series(usage: selectors.Usage, dimension: str) -> list[tuple[datetime, int, bool]]:
    (found,) = [d for d in usage.dimensions if d.dimension == dimension]
    return [(b.start, b.quantity, b.complete) for b in found.buckets]


def quantities(usage: selectors.Usage, dimension: str) -> list[int]:
    return [quantity for _, quantity, _ in series(usage, dimension)]


@pytest.fixture
def owner():
    return UserFactory()


@pytest.fixture
def org(owner):
    return make_org(owner=owner, name="Metered")


@pytest.fixture
def cluster(org):
    cluster, _ = make_cluster(org)
    return lived(cluster, datetime(2026, 10, 1, tzinfo=UTC))


# Buckets -------------------------------------------------------------------------------------


def test_hours_and_days_sum_across_a_utc_day_boundary(cluster):
    late = NOV2 - 2 * H
    record(cluster, INGRESS, {late: 1_000, late + H: 2_000, NOV2: 4_000, NOV2 + H: 8_000})
    record(cluster, EGRESS, {late + H: 5})

    by_hour = of_cluster(cluster, "hour", late, NOV2 + 2 * H)
    assert [start for start, _, _ in series(by_hour, INGRESS)] == [
        datetime(2026, 11, 1, 22, tzinfo=UTC),
        datetime(2026, 11, 1, 23, tzinfo=UTC),
        datetime(2026, 11, 2, 0, tzinfo=UTC),
        datetime(2026, 11, 2, 1, tzinfo=UTC),
    ]
    assert quantities(by_hour, INGRESS) == [1_000, 2_000, 4_000, 8_000]
    assert quantities(by_hour, EGRESS) == [0, 5, 0, 0]  # every bucket, 0 where nothing was

    by_day = of_cluster(cluster, "day", NOV1, NOV3)
    assert series(by_day, INGRESS) == [(NOV1, 3_000, False), (NOV2, 12_000, False)]
    assert [d.dimension for d in by_day.dimensions] == [
        INGRESS,
        EGRESS,
        STORAGE,
        PARTITIONS,
        Dimension.CLUSTER_HOURS,
        Dimension.CAPACITY_UNIT_HOURS,
    ]
    assert [d.unit for d in by_day.dimensions] == [
        "bytes",
        "bytes",
        "byte-hours",
        "partition-hours",
        "cluster-hours",
        "capacity-unit-hours",
    ]


def test_the_window_is_widened_to_whole_buckets():
    by_hour = window("hour", NOV1 + 90 * timedelta(minutes=1), NOV1 + 4 * H + timedelta(seconds=1))
    assert (by_hour.start, by_hour.end) == (NOV1 + H, NOV1 + 5 * H)
    by_day = window("day", NOV1 + 5 * H, NOV2 + timedelta(microseconds=1))
    assert (by_day.start, by_day.end) == (NOV1, NOV3)
    assert by_day.bucket_starts() == [NOV1, NOV2]
    # An offset is only another way to name the same instant.
    paris = timezone.get_fixed_timezone(60)
    assert window("hour", datetime(2026, 11, 1, 1, 30, tzinfo=paris), NOV1 + H).start == NOV1


def test_the_default_window_ends_with_the_current_bucket():
    now = datetime(2026, 11, 22, 7, 10, tzinfo=UTC)
    by_hour = selectors.usage_window(granularity="hour", now=now)
    assert by_hour.end == datetime(2026, 11, 22, 8, tzinfo=UTC)
    assert len(by_hour.bucket_starts()) == 24
    by_day = selectors.usage_window(granularity="day", now=now)
    assert by_day.end == datetime(2026, 11, 23, tzinfo=UTC)
    assert len(by_day.bucket_starts()) == 30
    start_only = selectors.usage_window(granularity="day", start=NOV1, now=now)
    assert (start_only.start, start_only.end) == (NOV1, by_day.end)


@pytest.mark.parametrize(
    ("granularity", "start", "end", "field"),
    [
        ("week", None, None, "granularity"),
        ("hour", NOV2, NOV1, "end"),
        ("hour", NOV1, NOV1, "end"),
        ("hour", NOV1, NOV1 + timedelta(days=31, hours=1), "end"),
        ("day", NOV1, NOV1 + timedelta(days=401), "end"),
        ("hour", datetime(2026, 11, 1), None, "start"),  # no offset
    ],
)
def test_windows_that_cannot_be_served_are_refused(granularity, start, end, field):
    from foundation.errors import InvalidInput

    with pytest.raises(InvalidInput) as refused:
        selectors.usage_window(granularity=granularity, start=start, end=end)
    assert refused.value.extra["field"] == field


def test_the_longest_windows_are_served():
    assert len(window("hour", NOV1, NOV1 + timedelta(days=31)).bucket_starts()) == 744
    assert len(window("day", NOV1, NOV1 + timedelta(days=400)).bucket_starts()) == 400


# Completeness --------------------------------------------------------------------------------


def test_a_bucket_is_complete_when_every_hour_the_cluster_lived_is_recorded_and_complete(org):
    cluster = lived(make_cluster(org)[0], NOV1 + 10 * H + timedelta(minutes=30))
    record(cluster, INGRESS, hours(NOV1 + 10 * H, 14))  # 10:00 (born 10:30) to 23:00
    record(cluster, INGRESS, hours(NOV2, 24))
    record(cluster, INGRESS, {NOV2 + 5 * H: 1}, complete=False)  # samples missing
    record(cluster, INGRESS, hours(NOV3, 23))  # 23:00 not recorded

    by_day = of_cluster(cluster, "day", NOV1 - timedelta(days=1), NOV3 + timedelta(days=1))
    assert series(by_day, INGRESS) == [
        (NOV1 - timedelta(days=1), 0, True),  # before it existed: nothing is missing
        (NOV1, 14, True),  # its first day, from the hour it was created
        (NOV2, 24, False),  # one hour incomplete
        (NOV3, 23, False),  # one hour missing
    ]
    assert [complete for _, _, complete in series(by_day, EGRESS)] == [True, False, False, False]

    by_hour = of_cluster(cluster, "hour", NOV1 + 9 * H, NOV1 + 11 * H, [INGRESS])
    assert series(by_hour, INGRESS) == [(NOV1 + 9 * H, 0, True), (NOV1 + 10 * H, 1, True)]
    by_hour = of_cluster(cluster, "hour", NOV2 + 4 * H, NOV2 + 6 * H, [INGRESS])
    assert [complete for _, _, complete in series(by_hour, INGRESS)] == [True, False]


def test_hours_after_a_cluster_was_deleted_are_not_expected(org):
    cluster = lived(make_cluster(org)[0], NOV1, died=NOV1 + 11 * H + timedelta(minutes=5))
    record(cluster, INGRESS, hours(NOV1, 11))
    by_day = of_cluster(cluster, "day", NOV1, NOV2, [INGRESS])
    assert series(by_day, INGRESS) == [(NOV1, 11, False)]  # 11:00-11:05 is missing
    record(cluster, INGRESS, {NOV1 + 11 * H: 1})
    by_day = of_cluster(cluster, "day", NOV1, NOV2, [INGRESS])
    assert series(by_day, INGRESS) == [(NOV1, 12, True)]


# Adjustments ---------------------------------------------------------------------------------


def test_adjustments_are_folded_into_the_bucket_of_the_hour_they_correct(cluster):
    hour = NOV1 + 10 * H
    record(cluster, INGRESS, {hour: 100, hour + H: 50})
    close_month_of(cluster.organization, hour)
    record(cluster, INGRESS, {hour: 130})  # late data for an invoiced hour
    assert list(UsageAdjustment.unscoped_all_tenants.values_list("quantity", flat=True)) == [30]

    (ingress,) = of_cluster(cluster, "hour", hour, hour + 2 * H, [INGRESS]).dimensions
    assert [(b.quantity, b.adjustment) for b in ingress.buckets] == [(130, 30), (50, 0)]
    (ingress,) = of_cluster(cluster, "day", NOV1, NOV2, [INGRESS]).dimensions
    assert [(b.quantity, b.adjustment) for b in ingress.buckets] == [(180, 30)]


# Limits --------------------------------------------------------------------------------------


def test_the_limit_per_bucket_is_the_tier_limit_over_the_bucket(cluster):
    # Serverless: 100 MB/s in, 300 MB/s out, 2,048 partitions, 5,000 GB.
    limits = {
        d.dimension: d.limit_per_bucket for d in of_cluster(cluster, "hour", NOV1, NOV2).dimensions
    }
    assert limits == {
        INGRESS: 100 * 10**6 * 3600,
        EGRESS: 300 * 10**6 * 3600,
        STORAGE: 5_000 * GB * 1,
        PARTITIONS: 2_048 * 1,
        # A tier limits what a cluster does, not how long it lives.
        Dimension.CLUSTER_HOURS: None,
        Dimension.CAPACITY_UNIT_HOURS: None,
    }
    by_day = of_cluster(cluster, "day", NOV1, NOV2).dimensions
    assert {d.dimension: d.limit_per_bucket for d in by_day} == {
        INGRESS: 100 * 10**6 * 86_400,
        EGRESS: 300 * 10**6 * 86_400,
        STORAGE: 5_000 * GB * 24,
        PARTITIONS: 2_048 * 24,
        Dimension.CLUSTER_HOURS: None,
        Dimension.CAPACITY_UNIT_HOURS: None,
    }


def test_a_dedicated_clusters_limits_scale_with_its_capacity_units(org):
    cluster, _ = make_cluster(org, tier_slug="dedicated", name="big")
    Cluster.unscoped_all_tenants.filter(pk=cluster.pk).update(capacity_units=3)
    cluster = Cluster.unscoped_all_tenants.select_related("tier").get(pk=cluster.pk)
    # Dedicated, per capacity unit: 60 MB/s in, 180 MB/s out, 4,500 partitions, 10,000 GB.
    limits = selectors.limits_per_bucket(cluster=cluster, granularity="hour")
    assert limits == {
        INGRESS: 3 * 60 * 10**6 * 3600,
        EGRESS: 3 * 180 * 10**6 * 3600,
        STORAGE: 3 * 10_000 * GB,
        PARTITIONS: 3 * 4_500,
    }


# An organization -----------------------------------------------------------------------------


def test_an_organizations_usage_sums_its_clusters_and_only_its_own(org, cluster):
    second = lived(make_cluster(org, name="second")[0], NOV1)
    gone = lived(make_cluster(org, name="gone")[0], NOV1, died=NOV1 + 2 * H)
    record(cluster, INGRESS, {NOV1: 1, NOV1 + H: 2, NOV1 + 2 * H: 4})
    record(second, INGRESS, {NOV1: 10, NOV1 + H: 20})
    record(gone, INGRESS, {NOV1: 100, NOV1 + H: 200})
    stranger = lived(make_cluster(make_org(name="Other"), name="theirs")[0], NOV1)
    record(stranger, INGRESS, {NOV1: 1_000_000})

    with tenant_scope(org):
        usage = selectors.organization_usage(
            organization=org, window=window("hour", NOV1, NOV1 + 3 * H), dimensions=[INGRESS]
        )
    assert usage.cluster is None
    (ingress,) = usage.dimensions
    assert ingress.limit_per_bucket is None
    # The third hour: the deleted cluster is not expected, the second cluster's row is missing.
    assert [(b.quantity, b.complete) for b in ingress.buckets] == [
        (111, True),
        (222, True),
        (4, False),
    ]


# The API -------------------------------------------------------------------------------------


def usage_url(cluster=None, *, org=None, **query) -> str:
    if cluster is not None:
        path = f"/api/v1/orgs/{cluster.organization.public_id}/clusters/{cluster.public_id}/usage/"
    else:
        path = f"/api/v1/orgs/{org.public_id}/usage/"
    return f"{path}?{urlencode(query, doseq=True)}" if query else path


def test_the_api_answers_buckets_in_base_units(owner, cluster):
    record(cluster, INGRESS, {NOV2 - H: 3 * GB, NOV2: 5 * GB})
    response = session_client(owner).get(
        usage_url(
            cluster,
            granularity="day",
            start="2026-11-01T00:00:00Z",
            end="2026-11-03T00:00:00Z",
            dimension="ingress_bytes,partition_hours",
        )
    )
    assert response.status_code == 200, response.content
    assert response.json() == {
        "cluster": cluster.public_id,
        "granularity": "day",
        "start": "2026-11-01T00:00:00Z",
        "end": "2026-11-03T00:00:00Z",
        "dimensions": [
            {
                "dimension": "ingress_bytes",
                "unit": "bytes",
                "limit_per_bucket": 100 * 10**6 * 86_400,
                "buckets": [
                    {
                        "start": "2026-11-01T00:00:00Z",
                        "quantity": 3 * GB,
                        "complete": False,
                        "adjustment": 0,
                    },
                    {
                        "start": "2026-11-02T00:00:00Z",
                        "quantity": 5 * GB,
                        "complete": False,
                        "adjustment": 0,
                    },
                ],
            },
            {
                "dimension": "partition_hours",
                "unit": "partition-hours",
                "limit_per_bucket": 2_048 * 24,
                "buckets": [
                    {
                        "start": "2026-11-01T00:00:00Z",
                        "quantity": 0,
                        "complete": False,
                        "adjustment": 0,
                    },
                    {
                        "start": "2026-11-02T00:00:00Z",
                        "quantity": 0,
                        "complete": False,
                        "adjustment": 0,
                    },
                ],
            },
        ],
    }


def test_dimensions_may_be_repeated_and_offsets_are_honoured(owner, cluster):
    response = session_client(owner).get(
        usage_url(
            cluster,
            dimension=["storage_byte_hours", "egress_bytes", "storage_byte_hours"],
            start="2026-11-01T00:30:00+01:00",  # urlencode writes the + as %2B
            end="2026-11-01T03:00:00Z",
        )
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert [d["dimension"] for d in body["dimensions"]] == ["storage_byte_hours", "egress_bytes"]
    assert (body["start"], body["end"]) == ("2026-10-31T23:00:00Z", "2026-11-01T03:00:00Z")
    assert len(body["dimensions"][0]["buckets"]) == 4


def test_by_default_the_last_24_hours_of_every_dimension(owner, cluster):
    before = timezone.now()
    body = session_client(owner).get(usage_url(cluster)).json()
    start, end = (datetime.fromisoformat(body[k]) for k in ("start", "end"))
    assert body["granularity"] == "hour"
    assert end - start == timedelta(hours=24)
    assert end.minute == end.second == 0
    assert before <= end <= timezone.now() + H
    assert [d["dimension"] for d in body["dimensions"]] == list(METERED_DIMENSIONS)
    assert all(len(d["buckets"]) == 24 for d in body["dimensions"])


def test_an_organizations_usage_has_no_cluster_and_no_limit(owner, org, cluster):
    record(cluster, PARTITIONS, {NOV1: 6})
    body = (
        session_client(owner)
        .get(usage_url(org=org, start="2026-11-01T00:00:00Z", end="2026-11-01T01:00:00Z"))
        .json()
    )
    assert body["cluster"] is None
    assert {d["limit_per_bucket"] for d in body["dimensions"]} == {None}
    partitions = next(d for d in body["dimensions"] if d["dimension"] == "partition_hours")
    assert [b["quantity"] for b in partitions["buckets"]] == [6]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"granularity": "week"}, "granularity"),
        ({"start": "2026-11-02T00:00:00Z", "end": "2026-11-01T00:00:00Z"}, "end"),
        ({"start": "2026-11-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"}, "end"),
        ({"start": "2026-10-01T00:00:00Z", "end": "2026-11-02T00:00:00Z"}, "end"),
        (
            {"granularity": "day", "start": "2025-01-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"},
            "end",
        ),
        ({"dimension": "ingress_bytes,cpu_seconds"}, "dimension"),
        ({"start": "2026-11-01T00:00:00"}, "start"),
        ({"end": "yesterday"}, "end"),
    ],
)
def test_an_invalid_query_is_a_validation_problem_on_its_field(owner, org, cluster, query, field):
    client = session_client(owner)
    for url in (usage_url(cluster, **query), usage_url(org=org, **query)):
        response = client.get(url)
        assert response.status_code == 400, response.content
        assert response["Content-Type"] == "application/problem+json"
        body = response.json()
        assert body["code"] == "validation"
        assert list(body["errors"]) == [field], body


def test_a_range_too_long_says_what_is_allowed(owner, cluster):
    body = (
        session_client(owner)
        .get(usage_url(cluster, start="2026-10-01T00:00:00Z", end="2026-11-02T00:00:00Z"))
        .json()
    )
    assert "At most 31 days (744 buckets) by hour" in body["errors"]["end"][0]
    assert "granularity=day" in body["errors"]["end"][0]


@pytest.mark.parametrize("role", Role.values)
def test_every_role_reads_usage_with_a_session_or_a_key(org, cluster, role):
    record(cluster, INGRESS, {NOV1: 42})
    query = {
        "start": "2026-11-01T00:00:00Z",
        "end": "2026-11-01T01:00:00Z",
        "dimension": "ingress_bytes",
    }
    for client in (
        session_client(add_member(org, role).user),
        key_client(make_api_key(org, role)[1]),
    ):
        for url in (usage_url(cluster, **query), usage_url(org=org, **query)):
            response = client.get(url)
            assert response.status_code == 200, (role, url, response.content)
            assert response.json()["dimensions"][0]["buckets"][0]["quantity"] == 42


def test_another_organization_cannot_read_the_usage(org, cluster):
    record(cluster, INGRESS, {NOV1: 987_654_321})
    query = {"start": "2026-11-01T00:00:00Z", "end": "2026-11-01T01:00:00Z"}
    outsider = UserFactory()
    elsewhere = make_org(owner=outsider, name="Elsewhere")
    for client in (session_client(outsider), key_client(make_api_key(elsewhere, Role.OWNER)[1])):
        for url in (
            usage_url(cluster, **query),  # the victim's organization
            usage_url(org=org, **query),
            # Their own organization, naming the victim's cluster.
            f"/api/v1/orgs/{elsewhere.public_id}/clusters/{cluster.public_id}/usage/",
        ):
            response = client.get(url)
            assert response.status_code == 404, url
            assert response.json()["code"] == "not_found"
            assert cluster.public_id not in response.content.decode()
        own = client.get(usage_url(org=elsewhere, **query)).json()
        assert {b["quantity"] for d in own["dimensions"] for b in d["buckets"]} == {0}


def test_a_deleted_cluster_counts_for_the_organization_but_has_no_page(owner, org, cluster):
    record(cluster, INGRESS, {NOV1: 7})
    lived(cluster, cluster.created_at, died=NOV1 + H)
    client = session_client(owner)
    query = {"start": "2026-11-01T00:00:00Z", "end": "2026-11-01T01:00:00Z"}
    assert client.get(usage_url(cluster, **query)).status_code == 404
    body = client.get(usage_url(org=org, dimension="ingress_bytes", **query)).json()
    assert body["dimensions"][0]["buckets"] == [
        {"start": "2026-11-01T00:00:00Z", "quantity": 7, "complete": True, "adjustment": 0}
    ]
