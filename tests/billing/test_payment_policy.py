"""The payment-method policy (billing/payment_policy.py), registered with the clusters' creation
guards: without a payment method, no tier charged by the hour, and Serverless up to the free
allowance a month; only when Stripe is configured. Stripe is configured here by pointing the
settings at the stand-in, which the policy never calls (checked)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.accounts import billing_account_of
from billing.models import BillingAccount, PaymentStatus
from billing.services import HourSnapshot, record_hours
from clusters import services
from clusters.models import Cluster, ClusterSize, Dimension, Topic
from foundation.errors import PaymentMethodRequired
from tenants.audit import Actor
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, make_api_key, make_cell, make_cluster, make_org
from tests.support.clients import key_client
from tests.support.feedback import refused_page
from tests.support.stripe_standin import API_KEY

pytestmark = pytest.mark.django_db

SYSTEM = Actor(system="tests")
GB = 10**9


@pytest.fixture
def stripe_on(settings, stripe_standin):
    settings.STRIPE_API_KEY = API_KEY
    settings.STRIPE_API_BASE = stripe_standin.url
    yield
    assert stripe_standin.requests == []  # the policy reads Sluice's own records only


@pytest.fixture
def owner():
    return UserFactory()


@pytest.fixture
def org(owner):
    organization = make_org(owner=owner, name="Unpaid")
    make_cell()
    return organization


def payment_status(org, status: str) -> None:
    with tenant_scope(org):
        billing_account_of(organization=org)
    BillingAccount.unscoped_all_tenants.filter(organization=org).update(payment_status=status)


def api(org):
    _key, secret = make_api_key(org, role=Role.OWNER)
    return key_client(secret)


def create(client, org, tier: str, name: str = "events", **fields):
    return client.post(
        f"/api/v1/orgs/{org.public_id}/clusters/",
        {"name": name, "type": tier, "region": "eu-west-1", **fields},
        format="json",
    )


def create_topic(client, cluster, name: str = "orders"):
    return client.post(
        f"/api/v1/orgs/{cluster.organization.public_id}/clusters/{cluster.public_id}/topics/",
        {"name": name, "partitions": 1},
        format="json",
    )


def month_start() -> datetime:
    return timezone.now().astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def written(cluster, quantity: int, hour: datetime) -> None:
    """Bytes written in ``hour``, the cluster's tier on record from the day before."""
    ClusterSize.unscoped_all_tenants.filter(cluster=cluster).update(since=hour - timedelta(days=40))
    record_hours([HourSnapshot(cluster.pk, Dimension.INGRESS_BYTES, hour, quantity, True)])


# Tiers charged by the hour -------------------------------------------------------------------


@pytest.mark.parametrize("tier", ["standard", "dedicated"])
def test_no_cluster_charged_by_the_hour_without_a_payment_method(org, stripe_on, tier):
    response = create(api(org), org, tier)

    assert response.status_code == 402
    problem = response.json()
    assert (problem["code"], problem["field"]) == ("payment_method_required", "type")
    assert "need a payment method on file" in problem["detail"]
    with tenant_scope(org):
        assert not Cluster.objects.exists()


def test_serverless_needs_no_payment_method(org, stripe_on):
    assert create(api(org), org, "serverless").status_code == 202


@pytest.mark.parametrize("status", [PaymentStatus.OK, PaymentStatus.PAST_DUE])
def test_an_account_with_a_payment_method_creates_any_tier(org, stripe_on, status):
    payment_status(org, status)
    client = api(org)
    assert create(client, org, "standard", name="one").status_code == 202
    assert create(client, org, "dedicated", name="two").status_code == 202


def test_without_stripe_nothing_asks_for_a_payment_method(org, settings):
    settings.STRIPE_API_KEY = ""
    payment_status(org, PaymentStatus.NONE)
    client = api(org)
    assert create(client, org, "standard", name="one").status_code == 202
    assert create(client, org, "dedicated", name="two").status_code == 202


def test_no_reshape_into_a_tier_charged_by_the_hour_nor_larger(org, stripe_on):
    serverless, _ = make_cluster(org, name="small")
    payment_status(org, PaymentStatus.OK)
    dedicated, _ = make_cluster(org, tier_slug="dedicated", name="big", capacity_units=3)
    payment_status(org, PaymentStatus.NONE)  # its card was removed since
    base = f"/api/v1/orgs/{org.public_id}/clusters/"
    client = api(org)

    def change(cluster, **fields):
        return client.patch(f"{base}{cluster.public_id}/", fields, format="json")

    into_standard = change(serverless, type="standard")
    grown = change(dedicated, capacity_units=4)
    renamed = change(dedicated, name="renamed")
    shrunk = change(dedicated, capacity_units=2)  # cheaper: never refused
    into_serverless = change(dedicated, type="serverless")  # cheaper: never refused

    assert [r.status_code for r in (into_standard, grown)] == [402, 402]
    assert {r.json()["code"] for r in (into_standard, grown)} == {"payment_method_required"}
    assert [r.status_code for r in (renamed, shrunk, into_serverless)] == [200, 202, 202]


# The no-card allowance ----------------------------------------------------------------------------


def test_serverless_up_to_the_free_allowance_then_no_new_clusters_or_topics(org, stripe_on):
    # $10 is 125 GB written at $0.08 per GB (80,000 micro-dollars per 10^9 bytes).
    # 124,999,999,999 bytes cost 9,999,999.99992 -> 9,999,999 micro-dollars: still under.
    cluster, _ = make_cluster(org, name="events")
    client = api(org)
    written(cluster, 124_999_999_999, month_start())
    assert create_topic(client, cluster, "under").status_code == 202

    # One byte more: 125 GB = 10,000,000 micro-dollars, the whole allowance.
    written(cluster, 125 * GB, month_start())
    topic = create_topic(client, cluster, "over")
    new_cluster = create(client, org, "serverless", name="second")

    for response in (topic, new_cluster):
        assert response.status_code == 402
        problem = response.json()
        assert problem["code"] == "payment_method_required"
        assert (problem["allowance_micros"], problem["used_micros"]) == (10_000_000, 10_000_000)
    assert problem["detail"].startswith(
        "This month's usage ($10.00 so far) has reached the no-card allowance of $10.00"
    )
    with tenant_scope(org):
        assert list(Topic.objects.values_list("name", flat=True)) == ["under"]
        assert Cluster.objects.count() == 1
    # Nothing stops: what exists keeps running and may still be changed or deleted.
    base = f"/api/v1/orgs/{org.public_id}/clusters/{cluster.public_id}/"
    assert client.patch(base, {"name": "renamed"}, format="json").status_code == 200
    assert client.delete(base).status_code == 202


def test_the_allowance_is_a_setting_and_counts_this_month_only(org, stripe_on, settings):
    settings.SLUICE_NO_CARD_ALLOWANCE_MICROS = 400_000  # 40 cents: 5 GB written
    cluster, _ = make_cluster(org, name="events")
    written(cluster, 50 * GB, month_start() - timedelta(hours=1))  # last month: $4
    written(cluster, 4 * GB, month_start())  # 320,000 micro-dollars
    client = api(org)
    assert create_topic(client, cluster, "first").status_code == 202

    written(cluster, 5 * GB, month_start())  # 400,000: reached
    assert create_topic(client, cluster, "second").status_code == 402

    payment_status(org, PaymentStatus.OK)
    assert create_topic(client, cluster, "third").status_code == 202


def test_the_service_raises_the_foundation_error(org, stripe_on):
    with tenant_scope(org), pytest.raises(PaymentMethodRequired) as refused:
        services.cluster_create(
            organization=org, actor=SYSTEM, name="x", tier_slug="standard", region="eu-west-1"
        )
    assert refused.value.status == 402


def test_the_web_form_says_a_payment_method_is_needed(org, owner, stripe_on, client):
    client.force_login(owner)
    listing = reverse("clusters:list", kwargs={"org": org.public_id})
    response = client.post(
        listing,
        {"name": "events", "type": "dedicated", "region": "eu-west-1", "capacity_units": "1"},
    )
    body = refused_page(client, response, listing, "create")
    assert "Dedicated clusters are charged by the hour and need a payment method on file." in body
    assert 'class="tier-picker has-error"' in body
