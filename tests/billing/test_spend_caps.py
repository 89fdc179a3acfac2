"""Spend caps (billing/caps.py): reached after a metering run, a cap throttles the
organization's shared-Kafka clusters through the reconciler and refuses growth; raising it or
a new month lifts it; nothing is deleted. The data plane is the simulated one (its KafkaUser
manifests are read back); the throughput on the real broker is in test_spend_caps_kafka.py.
Serverless ingress is $0.08 per GB (80,000 micro-dollars per 10^9 bytes)."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from billing.models import SpendCap, SpendHold
from billing.services import HourSnapshot, record_hours
from billing.spend_watch import spend_check
from clusters import naming, reconciler
from clusters.models import Cluster, ClusterSize, ClusterState, Dimension, SimulatedObject, Topic
from tenants.models import AuditEvent
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, make_api_key, make_cluster, make_org
from tests.support.clients import key_client

pytestmark = pytest.mark.django_db

GB = 10**9


def now() -> datetime:
    return datetime.now(UTC)


def this_hour() -> datetime:
    return now().replace(minute=0, second=0, microsecond=0)


@pytest.fixture
def org():
    return make_org(owner=UserFactory(), name="Capped")


@pytest.fixture
def owner_api(org):
    _key, secret = make_api_key(org, role=Role.OWNER)
    return key_client(secret)


def serverless(org, name="events"):
    cluster, _ = make_cluster(org, name=name)
    ClusterSize.unscoped_all_tenants.filter(cluster=cluster).update(
        since=now() - timedelta(days=40)
    )
    assert reconciler.reconcile(cluster.pk) == reconciler.Outcome.CONVERGED
    return cluster


def written(cluster, quantity: int) -> None:
    """Bytes written into the cluster in the current hour."""
    record_hours([HourSnapshot(cluster.pk, Dimension.INGRESS_BYTES, this_hour(), quantity, False)])


def caps_url(org, scope="organization") -> str:
    return f"/api/v1/orgs/{org.public_id}/spend-caps/{scope}/"


def set_cap(client, org, usd: str, scope="organization"):
    return client.put(caps_url(org, scope), {"monthly_cap_usd": usd}, format="json")


def converge(cluster) -> Cluster:
    assert reconciler.reconcile(cluster.pk) == reconciler.Outcome.CONVERGED
    cluster.refresh_from_db()
    return cluster


def quotas(cluster) -> list[dict]:
    """The quotas of the cluster's credentials (Sluice's own principals of it have none)."""
    sluices = {naming.sluice_username(cluster.public_id, role) for role in ("observer", "offsets")}
    return [
        item.manifest["spec"]["quotas"]
        for item in SimulatedObject.objects.filter(
            cluster_public_id=cluster.public_id, kind="KafkaUser"
        )
        if item.name not in sluices
    ]


def add_topic(client, cluster, name):
    base = f"/api/v1/orgs/{cluster.organization.public_id}/clusters/{cluster.public_id}"
    return client.post(f"{base}/topics/", {"name": name, "partitions": 1}, format="json")


def add_credential(client, cluster, name):
    base = f"/api/v1/orgs/{cluster.organization.public_id}/clusters/{cluster.public_id}"
    return client.post(f"{base}/credentials/", {"name": name}, format="json")


def test_a_reached_cap_throttles_refuses_growth_and_lifts_when_raised(org, owner_api):
    cluster = serverless(org)
    assert add_credential(owner_api, cluster, "app").status_code == 202
    assert add_topic(owner_api, cluster, "orders").status_code == 202
    cluster = converge(cluster)
    own_quotas = quotas(cluster)
    assert own_quotas
    assert own_quotas[0]["producerByteRate"] > 1024

    assert set_cap(owner_api, org, "1.00").status_code == 200
    written(cluster, 12 * GB + 500_000_000)  # 12.5 GB: $1.00 exactly
    assert spend_check().holds_changed == 1

    hold = SpendHold.unscoped_all_tenants.get(organization=org)
    assert (hold.cap_micros, hold.spend_micros, hold.lifted_at) == (1_000_000, 1_000_000, None)
    cluster = converge(cluster)
    assert cluster.state == ClusterState.THROTTLED
    assert cluster.throttle_reason.startswith(
        "Reached the organization's spend cap of $1.00 a month on "
    )
    # The floors, per broker of the cell's shared Kafka (3): 1,024 and 65,536 bytes a second.
    assert [(q["producerByteRate"], q["consumerByteRate"]) for q in quotas(cluster)] == [
        (341, 21845)
    ]
    assert quotas(cluster)[0]["controllerMutationRate"] == 0.1
    body = owner_api.get(f"/api/v1/orgs/{org.public_id}/clusters/{cluster.public_id}/").json()
    assert body["state"] == "throttled"
    assert body["throttle"]["reason"] == cluster.throttle_reason

    # Growth is refused; what exists keeps running and may be renamed.
    refusals = [
        add_topic(owner_api, cluster, "more"),
        add_credential(owner_api, cluster, "another"),
        owner_api.post(
            f"/api/v1/orgs/{org.public_id}/clusters/",
            {"name": "second", "type": "serverless", "region": "eu-west-1"},
            format="json",
        ),
        owner_api.patch(
            f"/api/v1/orgs/{org.public_id}/clusters/{cluster.public_id}/topics/orders/",
            {"partitions": 2},
            format="json",
        ),
    ]
    for refused in refusals:
        assert refused.status_code == 409, refused.content
        problem = refused.json()
        assert problem["code"] == "spend_cap_reached"
        assert problem["monthly_cap"] == "$1.00"
    base = f"/api/v1/orgs/{org.public_id}/clusters/{cluster.public_id}/"
    assert owner_api.patch(base, {"name": "renamed"}, format="json").status_code == 200
    with tenant_scope(org):
        assert list(Topic.objects.values_list("name", "partitions")) == [("orders", 1)]

    # Raised above the month so far: lifted at once, and the cluster's own quotas come back.
    overview = set_cap(owner_api, org, "2.00").json()
    assert overview["caps"][0]["reached"] is False
    assert overview["month_to_date_usd"] == "1.00"
    hold.refresh_from_db()
    assert hold.lift_reason == "cap_raised"
    cluster = converge(cluster)
    assert cluster.state == ClusterState.READY
    assert quotas(cluster) == own_quotas
    assert add_topic(owner_api, cluster, "more").status_code == 202
    actions = list(
        AuditEvent.unscoped_all_tenants.filter(
            organization=org, action__startswith="spend_cap"
        ).values_list("action", flat=True)
    )
    assert sorted(actions) == ["spend_cap.reached", "spend_cap.set", "spend_cap.set"]


def test_just_under_the_cap_nothing_happens(org, owner_api):
    cluster = serverless(org)
    set_cap(owner_api, org, "1.00")
    # 12,499,999,999 bytes: 999,999.99992 -> 999,999 micro-dollars, and no run rate yet (the
    # hour before this one is empty), so the projection stays under.
    written(cluster, 12_499_999_999)
    assert spend_check().holds_changed == 0
    assert not SpendHold.unscoped_all_tenants.exists()
    assert converge(cluster).state == ClusterState.READY


def test_a_new_month_lifts_the_hold(org, owner_api):
    cluster = serverless(org)
    set_cap(owner_api, org, "0.50")
    written(cluster, 10 * GB)  # $0.80
    spend_check()
    assert converge(cluster).state == ClusterState.THROTTLED

    next_month = (now().replace(day=1) + timedelta(days=32)).replace(day=1, hour=0, minute=5)
    assert spend_check(now=next_month).holds_changed == 1

    assert SpendHold.unscoped_all_tenants.get().lift_reason == "month_rolled_over"
    assert converge(cluster).state == ClusterState.READY


def test_a_cluster_cap_throttles_that_cluster_only(org, owner_api):
    busy, quiet = serverless(org, "busy"), serverless(org, "quiet")
    assert set_cap(owner_api, org, "0.10", scope=f"clusters/{busy.public_id}").status_code == 200
    written(busy, 2 * GB)  # $0.16
    written(quiet, 2 * GB)
    spend_check()

    assert converge(busy).state == ClusterState.THROTTLED
    assert converge(quiet).state == ClusterState.READY
    assert add_topic(owner_api, busy, "more").json()["code"] == "spend_cap_reached"
    assert add_topic(owner_api, quiet, "more").status_code == 202


def test_a_dedicated_cluster_is_not_throttled_but_cannot_grow(org, owner_api):
    dedicated, _ = make_cluster(org, tier_slug="dedicated", name="big", capacity_units=3)
    ClusterSize.unscoped_all_tenants.filter(cluster=dedicated).update(
        since=now() - timedelta(days=40)
    )
    set_cap(owner_api, org, "0.00")  # a zero cap: reached by any spend at all
    record_hours([HourSnapshot(dedicated.pk, Dimension.CAPACITY_UNIT_HOURS, this_hour(), 3, False)])
    spend_check()

    assert SpendHold.unscoped_all_tenants.filter(lifted_at__isnull=True).count() == 1
    dedicated.refresh_from_db()
    assert dedicated.throttled_since is None
    base = f"/api/v1/orgs/{org.public_id}/clusters/{dedicated.public_id}/"
    grown = owner_api.patch(base, {"capacity_units": 4}, format="json")
    assert (grown.status_code, grown.json()["code"]) == (409, "spend_cap_reached")
    assert owner_api.patch(base, {"capacity_units": 2}, format="json").status_code == 202


def test_concurrent_checks_open_one_hold(org, owner_api, transactional_db):
    cluster = serverless(org)
    set_cap(owner_api, org, "0.10")
    written(cluster, 5 * GB)
    barrier = threading.Barrier(4)
    results, errors = [], []

    def check():
        try:
            barrier.wait(timeout=10)
            results.append(spend_check().holds_changed)
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=check) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sorted(results) == [0, 0, 0, 1]
    assert SpendHold.unscoped_all_tenants.count() == 1
    assert AuditEvent.unscoped_all_tenants.filter(action="spend_cap.reached").count() == 1


# The API --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        ("-1", "negative"),
        ("1.2345678", "too_many_decimals"),
        ("\u0661\u0660", "not_a_decimal"),
        ("1e3", "not_a_decimal"),
        ("10000000.01", "too_large"),
        (" 5", "not_a_decimal"),
        ("5.", "not_a_decimal"),
        ("", "not_a_decimal"),
        ("0x10", "not_a_decimal"),
        ("NaN", "not_a_decimal"),
    ],
)
def test_a_cap_that_is_not_a_dollar_amount_is_refused(org, owner_api, amount, reason):
    response = set_cap(owner_api, org, amount)
    assert response.status_code == 400
    problem = response.json()
    assert (problem["code"], problem["reason"], problem["field"]) == (
        "invalid_amount",
        reason,
        "monthly_cap_usd",
    )
    assert not SpendCap.unscoped_all_tenants.exists()


def test_a_number_instead_of_a_string_is_refused(org, owner_api):
    response = owner_api.put(caps_url(org), {"monthly_cap_usd": 10}, format="json")
    assert response.status_code == 400
    assert response.json()["reason"] == "not_a_string"


@pytest.mark.parametrize(
    ("role", "read", "write"),
    [
        (Role.OWNER, 200, 200),
        (Role.BILLING, 200, 200),
        (Role.ADMIN, 200, 403),
        (Role.DEVELOPER, 403, 403),
        (Role.VIEWER, 403, 403),
    ],
)
def test_who_reads_and_sets_caps(org, role, read, write):
    _key, secret = make_api_key(org, role=role)
    client = key_client(secret)
    assert client.get(f"/api/v1/orgs/{org.public_id}/spend-caps/").status_code == read
    assert set_cap(client, org, "10").status_code == write


def test_another_tenants_cluster_cannot_be_capped(org, owner_api):
    other = make_org(owner=UserFactory(), name="Other")
    theirs = serverless(other)
    response = set_cap(owner_api, org, "1", scope=f"clusters/{theirs.public_id}")
    assert response.status_code == 404
    assert not SpendCap.unscoped_all_tenants.exists()


def test_caps_are_listed_with_the_month_so_far_and_removed(org, owner_api):
    cluster = serverless(org)
    written(cluster, GB)  # $0.08
    set_cap(owner_api, org, "250")
    set_cap(owner_api, org, "99.50", scope=f"clusters/{cluster.public_id}")

    body = owner_api.get(f"/api/v1/orgs/{org.public_id}/spend-caps/").json()
    assert body["month_to_date_usd"] == "0.08"
    assert [(c["cluster"], c["monthly_cap_usd"], c["month_to_date_usd"]) for c in body["caps"]] == [
        (None, "250.00", "0.08"),
        ({"id": cluster.public_id, "name": "events"}, "99.50", "0.08"),
    ]
    assert body["caps"][1]["monthly_cap_micros"] == 99_500_000
    assert owner_api.delete(caps_url(org)).status_code == 204
    assert owner_api.delete(caps_url(org)).status_code == 404
    assert SpendCap.unscoped_all_tenants.count() == 1


def test_operators_see_caps_and_holds_read_only(org, owner_api, client):
    cluster = serverless(org)
    set_cap(owner_api, org, "0.10")
    written(cluster, 5 * GB)
    spend_check()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    holds = client.get("/admin/billing/spendhold/")
    caps = client.get("/admin/billing/spendcap/")

    assert holds.status_code == caps.status_code == 200
    assert org.name in holds.content.decode()
    assert org.name in caps.content.decode()
    hold = SpendHold.unscoped_all_tenants.get()
    assert client.post(f"/admin/billing/spendhold/{hold.pk}/delete/").status_code == 403


def test_a_cap_with_fractions_of_a_cent_reads_back_as_set(org, owner_api):
    body = set_cap(owner_api, org, "12.345").json()
    assert body["caps"][0]["monthly_cap_usd"] == "12.345"
    assert body["caps"][0]["monthly_cap_micros"] == 12_345_000
    event = AuditEvent.unscoped_all_tenants.get(organization=org, action="spend_cap.set")
    assert event.after == {"monthly_cap": "$12.345"}
