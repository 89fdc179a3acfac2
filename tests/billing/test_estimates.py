"""The cost estimator, POST /api/v1/catalog/estimate/: a month (730 hours) of a steady workload
on a tier, priced by rating over the ledger rows it would meter. Every amount below is worked
out by hand from the catalog's prices (clusters.catalog); the module itself multiplies no
price. Public and rate-limited per network address, in the test Redis."""

import inspect
import json
import secrets
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.test import Client

from billing import estimates
from billing.estimates import Workload
from billing.rating import TierHistory, price_spans, rate
from billing.rating_inputs import price_book
from clusters.catalog import seed_catalog
from clusters.models import Tier, TierPrice

pytestmark = pytest.mark.django_db

URL = "/api/v1/catalog/estimate/"
GB = 10**9
START = datetime(2026, 11, 1, tzinfo=UTC)
# Serverless: 1 MB/s in, 3 MB/s out, 24 h of retention, 6 partitions.
SERVERLESS = {
    "type": "serverless",
    "ingress_mbps": 1,
    "egress_mbps": 3,
    "retention_hours": 24,
    "partitions": 6,
}


@pytest.fixture(autouse=True)
def catalog():
    seed_catalog(Tier, TierPrice)  # a transactional test before this one may have emptied it


@pytest.fixture
def client() -> Client:
    """A client address of its own for each test: counts in Redis outlive a test."""
    return Client(REMOTE_ADDR=f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}")


def post(client: Client, body, **headers):
    return client.post(URL, json.dumps(body), content_type="application/json", **headers)


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert (body["status"], body["code"]) == (status, code)
    return body


def amounts(lines) -> dict[str, int]:
    return {line["dimension"]: line["amount_micros"] for line in lines}


def test_serverless_by_dimension_written_out(client):
    response = post(client, SERVERLESS)
    assert response.status_code == 200, response.content
    body = response.json()
    # ingress: 1 MB/s * 3,600 s * 730 h = 2,628 GB at $0.08       = 210,240,000 micro-dollars
    # egress:  3 MB/s * 3,600 s * 730 h = 7,884 GB at $0.05       = 394,200,000
    # storage: 1 MB/s * 24 h * 3,600 s = 86.4 GB held 730 h = 63,072 GB-hours at 137
    #                                                             =   8,640,864
    # partitions: 6 * 730 = 4,380 partition-hours at 1,500        =   6,570,000
    # Serverless prices no time: no cluster-hour or capacity-unit-hour line.
    assert amounts(body["lines"]) == {
        "ingress_bytes": 210_240_000,
        "egress_bytes": 394_200_000,
        "storage_byte_hours": 8_640_864,
        "partition_hours": 6_570_000,
    }
    assert [line["quantity"] for line in body["lines"]] == [
        2_628 * GB,
        7_884 * GB,
        63_072 * GB,
        4_380,
    ]
    ingress, _egress, storage, partitions = body["lines"]
    assert ingress["unit"] == "bytes"
    assert storage["unit"] == "byte-hours"
    assert (ingress["unit_price_micros"], ingress["per_units"]) == (80_000, GB)
    assert ingress["unit_price_usd"] == "0.080000"
    assert storage["amount_usd"] == "8.640864"
    assert [line["amount_cents"] for line in body["lines"]] == [21_024, 39_420, 864, 657]
    assert body["total_micros"] == 619_650_864
    assert body["total_usd"] == "619.650864"
    assert body["total_cents"] == 61_965
    assert (body["hours"], body["currency"]) == (730, "usd")
    assert (body["type"], body["capacity_units"]) == ("serverless", 1)
    start = datetime.fromisoformat(body["period_start"])
    end = datetime.fromisoformat(body["period_end"])
    assert (end - start).total_seconds() == 730 * 3600
    assert start.minute == start.second == 0
    assert partitions["segment_start"] == body["period_start"]
    assert partitions["segment_end"] == body["period_end"]


def test_standard_bills_every_hour_and_decimal_throughput(client):
    body = post(
        client,
        {
            "type": "standard",
            "ingress_mbps": 2.5,
            "egress_mbps": 5,
            "retention_hours": 72,
            "partitions": 12,
        },
    ).json()
    # cluster-hours: 730 at $0.75                                 = 547,500,000
    # ingress: 2.5 MB/s * 3,600 s * 730 h = 6,570 GB at $0.05     = 328,500,000
    # egress:  5 MB/s * 3,600 s * 730 h = 13,140 GB at $0.05      = 657,000,000
    # storage: 2.5 MB/s * 72 h * 3,600 s = 648 GB held 730 h = 473,040 GB-hours at 110
    #                                                             =  52,034,400
    # partitions: 12 * 730 = 8,760 partition-hours at 1,000       =   8,760,000
    assert amounts(body["lines"]) == {
        "ingress_bytes": 328_500_000,
        "egress_bytes": 657_000_000,
        "storage_byte_hours": 52_034_400,
        "partition_hours": 8_760_000,
        "cluster_hours": 547_500_000,
    }
    assert body["total_micros"] == 1_593_794_400
    assert body["total_usd"] == "1593.794400"
    # Cents per line, half to even: 32,850 + 65,700 + 5,203 + 876 + 54,750.
    assert body["total_cents"] == 159_379


def test_dedicated_two_units(client):
    body = post(
        client,
        {
            "type": "dedicated",
            "ingress_mbps": 50,
            "egress_mbps": 150,
            "retention_hours": 24,
            "partitions": 100,
            "capacity_units": 2,
        },
    ).json()
    # capacity-unit-hours: 2 * 730 = 1,460 at $1.50               = 2,190,000,000
    # egress: 150 MB/s * 3,600 s * 730 h = 394,200 GB at $0.02     = 7,884,000,000
    # storage: 50 MB/s * 24 h * 3,600 s = 4,320 GB held 730 h = 3,153,600 GB-hours at 137
    #                                                              =   432,043,200
    # Ingress and partitions are included in Dedicated: no line.
    assert amounts(body["lines"]) == {
        "egress_bytes": 7_884_000_000,
        "storage_byte_hours": 432_043_200,
        "capacity_unit_hours": 2_190_000_000,
    }
    assert body["capacity_units"] == 2
    assert body["total_micros"] == 10_506_043_200
    assert body["total_cents"] == 1_050_604  # 788,400 + 43,204 + 219,000


def test_a_dedicated_cluster_without_units_is_the_tiers_minimum(client):
    body = post(client, {**SERVERLESS, "type": "dedicated"}).json()
    assert body["capacity_units"] == 1
    # 730 capacity-unit-hours at $1.50, 7,884 GB read at $0.02, 63,072 GB-hours at 137.
    assert body["total_micros"] == 1_095_000_000 + 157_680_000 + 8_640_864


def test_a_price_version_inside_the_month_starts_a_second_line():
    serverless = Tier.objects.get(slug="serverless")
    TierPrice.objects.create(
        tier=serverless,
        dimension="partition_hours",
        micros=3_000,
        per_units=1,
        effective_from=datetime(2026, 11, 5, 4, tzinfo=UTC),  # 100 hours in
    )
    workload = Workload(Decimal(1), Decimal(3), 24, 6)
    estimate = estimates.estimate(tier_slug="serverless", workload=workload, start=START)
    partitions = [line for line in estimate.lines if line.dimension == "partition_hours"]
    # 6 * 100 = 600 partition-hours at 1,500; 6 * 630 = 3,780 at 3,000.
    assert [(line.quantity, line.micros) for line in partitions] == [
        (600, 900_000),
        (3_780, 11_340_000),
    ]
    assert partitions[1].first_hour == datetime(2026, 11, 5, 4, tzinfo=UTC)
    assert estimate.total_micros == 210_240_000 + 394_200_000 + 8_640_864 + 12_240_000


def test_the_amounts_are_rates_and_the_module_prices_nothing_itself():
    workload = Workload(Decimal("1.5"), Decimal(3), 24, 6)
    estimate = estimates.estimate(tier_slug="serverless", workload=workload, start=START)
    tier = Tier.objects.get(slug="serverless")
    hourly = estimates.hourly_quantities(tier, 1, workload)
    rows = estimates.ledger_rows(hourly, START, estimate.end)
    assert len(list(rows)) == 6 * 730  # every dimension metered, every hour
    span_of = price_spans(price_book(), TierHistory.constant({"estimate": tier.pk}))
    rated = rate(estimates.ledger_rows(hourly, START, estimate.end), span_of)
    assert sorted(estimate.lines, key=str) == sorted(rated, key=str)
    # No second price formula: the module never reads a price's micro-dollars or units.
    source = inspect.getsource(estimates)
    for name in ("per_units", ".price", "amount_micros"):
        assert name not in source


def test_no_authentication_is_needed_or_looked_at(client):
    assert post(client, SERVERLESS).status_code == 200
    # A wrong key is not even read: the endpoint authenticates nobody.
    wrong = post(client, SERVERLESS, HTTP_AUTHORIZATION="Bearer sk_wrong")
    assert wrong.status_code == 200


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ingress_mbps": -1}, "ingress_mbps"),
        ({"egress_mbps": 1_000_001}, "egress_mbps"),
        ({"ingress_mbps": "1"}, "ingress_mbps"),  # a string, not a JSON number
        ({"ingress_mbps": "\u0661"}, "ingress_mbps"),  # an Arabic-Indic one
        ({"egress_mbps": 0.0000001}, "egress_mbps"),  # finer than a byte a second
        ({"ingress_mbps": True}, "ingress_mbps"),
        ({"retention_hours": 0}, "retention_hours"),
        ({"retention_hours": 1.5}, "retention_hours"),
        ({"partitions": -1}, "partitions"),
        ({"partitions": "6"}, "partitions"),
        ({"type": "premium"}, "type"),
        ({"type": None}, "type"),
        ({"capacity_units": 25}, "capacity_units"),
        ({"capacity_units": 0}, "capacity_units"),
    ],
)
def test_bad_fields_are_400_validation_naming_the_field(client, change, field):
    body = assert_problem(post(client, {**SERVERLESS, **change}), 400, "validation")
    assert set(body["errors"]) == {field}


def test_missing_fields_are_named(client):
    body = assert_problem(post(client, {"type": "serverless"}), 400, "validation")
    assert set(body["errors"]) == {"ingress_mbps", "egress_mbps", "retention_hours", "partitions"}


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"type": "serverless", "ingress_mbps": NaN}', "malformed_request"),
        (b'{"type": "serverless", "ingress_mbps": Infinity}', "malformed_request"),
        (b"[" * 40 + b"]" * 40, "malformed_request"),
        (b"[]", "validation"),
    ],
)
def test_bodies_that_are_not_an_estimate_are_refused(client, raw, code):
    assert_problem(client.post(URL, raw, content_type="application/json"), 400, code)


def test_a_number_too_large_for_a_float_is_refused(client):
    raw = json.dumps(SERVERLESS).replace('"ingress_mbps": 1', '"ingress_mbps": 1e400')
    response = client.post(URL, raw.encode(), content_type="application/json")
    assert set(assert_problem(response, 400, "validation")["errors"]) == {"ingress_mbps"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ingress_mbps": 100.000001}, "ingress_mbps"),  # Serverless: 100 MB/s
        ({"egress_mbps": 301}, "egress_mbps"),
        ({"partitions": 2049}, "partitions"),
        ({"retention_hours": 24 * 30 + 1}, "retention_hours"),
        # 100 MB/s kept 24 h is 8,640 GB: over Serverless's 5,000 GB.
        ({"ingress_mbps": 100, "retention_hours": 24}, "retention_hours"),
        ({"type": "dedicated", "capacity_units": 2, "egress_mbps": 361}, "egress_mbps"),
    ],
)
def test_a_workload_over_the_tiers_limits_is_tier_limit_exceeded(client, change, field):
    body = assert_problem(post(client, {**SERVERLESS, **change}), 400, "tier_limit_exceeded")
    assert body["field"] == field


def test_the_limits_hold_exactly_at_the_edge(client):
    edge = {**SERVERLESS, "ingress_mbps": 100, "egress_mbps": 300, "partitions": 2048}
    assert post(client, {**edge, "retention_hours": 13}).status_code == 200  # 4,680 GB


def test_capacity_units_outside_the_tiers_range(client):
    Tier.objects.filter(slug="dedicated").update(min_capacity_units=2, max_capacity_units=4)
    for units in (1, 5):
        body = assert_problem(
            post(client, {**SERVERLESS, "type": "dedicated", "capacity_units": units}),
            400,
            "validation",
        )
        assert body["field"] == "capacity_units"
    # Tiers not sized in units take 1 or nothing.
    body = assert_problem(post(client, {**SERVERLESS, "capacity_units": 2}), 400, "validation")
    assert body["field"] == "capacity_units"
    assert post(client, {**SERVERLESS, "capacity_units": 1}).status_code == 200


def test_a_tier_not_offered_is_not_estimated(client):
    Tier.objects.filter(slug="standard").update(offered=False)
    body = assert_problem(post(client, {**SERVERLESS, "type": "standard"}), 400, "validation")
    assert body["field"] == "type"


def test_each_address_is_rate_limited(client, settings):
    assert settings.REDIS_URL.startswith("redis://"), "this test counts in the real Redis"
    settings.SLUICE_RATE_LIMIT_ADDRESS_PER_MINUTE = 3
    responses = [post(client, SERVERLESS) for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r["RateLimit-Remaining"] for r in responses[:3]] == ["2", "1", "0"]
    body = assert_problem(responses[3], 429, "rate_limited")
    assert 1 <= body["retry_after"] <= 60
    # Bad requests count too; another address is not held back.
    assert post(client, {}).status_code == 429
    elsewhere = Client(REMOTE_ADDR=f"2001:db8::{secrets.token_hex(2)}:1")
    assert post(elsewhere, SERVERLESS).status_code == 200


def test_an_estimate_is_what_the_invoice_of_the_same_hours_charges():
    """The estimate's 730 hours written into the ledger of a real Serverless cluster and
    invoiced by the month close: the same lines, to the micro-dollar."""
    from datetime import timedelta

    from billing.closing import Outcome, month_close
    from billing.models import Invoice, InvoiceLine, MeteringCursor
    from billing.services import HourSnapshot, record_hours
    from clusters.models import ClusterSize
    from tests.factories import UserFactory, make_cluster, make_org

    october = datetime(2026, 10, 1, tzinfo=UTC)
    workload = Workload(Decimal(1), Decimal(3), 24, 6)
    estimate = estimates.estimate(tier_slug="serverless", workload=workload, start=october)
    organization = make_org(owner=UserFactory(), name="Estimated")
    cluster, _ = make_cluster(organization)
    ClusterSize.unscoped_all_tenants.filter(cluster=cluster).update(
        since=october - timedelta(days=1)
    )
    hourly = estimates.hourly_quantities(Tier.objects.get(slug="serverless"), 1, workload)
    record_hours(
        [
            HourSnapshot(cluster.pk, dimension, hour, quantity, True)
            for _cluster, dimension, hour, quantity in estimates.ledger_rows(
                hourly, october, estimate.end
            )
        ]
    )
    MeteringCursor.objects.update_or_create(
        cell=cluster.cell, defaults={"watermark": datetime(2026, 11, 2, tzinfo=UTC)}
    )

    closed = month_close(
        period_start=october,
        organization_ids=[organization.pk],
        now=datetime(2026, 11, 2, tzinfo=UTC),
    )

    assert closed == {organization.pk: Outcome.CLOSED}
    invoice = Invoice.unscoped_all_tenants.get(organization=organization, period_start=october)
    assert invoice.total_micros == estimate.total_micros
    invoiced = {
        line.dimension: line.amount_micros
        for line in InvoiceLine.unscoped_all_tenants.filter(invoice=invoice)
    }
    assert invoiced == {line.dimension: line.micros for line in estimate.lines}
    # Written out: 1 MB/s in for 730 h is 2,628 GB at $0.08 = $210.24.
    assert invoiced["ingress_bytes"] == 210_240_000
