"""Clusters through the API, on the simulated data plane: asynchronous operations, tiers,
placement, quotas and their errors."""

import json
import threading

import pytest
from django.db import connection
from django.db.models import Count

from clusters import reconciler
from clusters.models import Cell, Cluster, Operation, OrganizationQuota
from tenants.models import AuditEvent
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, make_api_key, make_cell, make_org
from tests.support.clients import key_client, session_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def org(db):
    owner = UserFactory()
    organization = make_org(owner=owner, name="Streamers")
    make_cell()
    return organization, session_client(owner)


def url(organization, rest: str = "") -> str:
    return f"/api/v1/orgs/{organization.public_id}/{rest}"


def create(client, organization, **body):
    body = {"name": "events", "type": "serverless", "region": "eu-west-1", **body}
    return client.post(url(organization, "clusters/"), body, format="json")


def test_the_catalog_is_public_and_priced(client):
    make_cell(region="us-east-1")
    body = client.get("/api/v1/catalog/").json()
    assert body["regions"] == ["us-east-1"]
    tiers = {tier["slug"]: tier for tier in body["cluster_types"]}
    assert list(tiers) == ["serverless", "standard", "dedicated"]
    serverless_prices = {p["dimension"] for p in tiers["serverless"]["prices"]}
    assert "cluster_hours" not in serverless_prices  # no idle floor
    assert {"ingress_bytes", "egress_bytes", "storage_byte_hours"} <= serverless_prices
    assert tiers["dedicated"]["limits_per"] == "capacity unit"
    standard_hour = next(
        p for p in tiers["standard"]["prices"] if p["dimension"] == "cluster_hours"
    )
    assert (standard_hour["micros"], standard_hour["usd"]) == (750_000, "0.75")


def test_a_serverless_cluster_is_usable_at_once(org, django_capture_on_commit_callbacks):
    organization, client = org
    with django_capture_on_commit_callbacks(execute=True):
        response = create(client, organization)
    assert response.status_code == 202
    body = response.json()
    cluster_id, operation_id = body["cluster"]["id"], body["operation"]["id"]
    assert cluster_id.startswith("kc_")
    assert body["operation"]["kind"] == "cluster.create"
    assert response["Location"].endswith(f"/operations/{operation_id}/")

    cluster = client.get(url(organization, f"clusters/{cluster_id}/")).json()
    assert cluster["state"] == "ready"
    assert cluster["observed_generation"] == cluster["generation"] == 1
    assert cluster["bootstrap_servers"].endswith(":9092")
    assert cluster["connection"]["name_prefix"] == f"{cluster_id}."
    assert "SCRAM-SHA-512" in cluster["connection"]["client_properties"]
    assert cluster["conditions"][0]["reason"] == "Simulated"
    operation = client.get(url(organization, f"operations/{operation_id}/")).json()
    assert operation["state"] == "succeeded"
    assert operation["finished_at"] is not None


def test_a_dedicated_cluster_provisions_then_turns_ready(
    org, settings, django_capture_on_commit_callbacks
):
    organization, client = org
    with django_capture_on_commit_callbacks(execute=True):
        body = create(client, organization, type="dedicated", capacity_units=2).json()
    cluster = Cluster.unscoped_all_tenants.get(public_id=body["cluster"]["id"])
    cluster.refresh_from_db()
    assert cluster.state == "provisioning"  # the simulated brokers take a while
    assert cluster.capacity_units == 2
    settings.SLUICE_SIMULATED_DEDICATED_READY_SECONDS = 0
    from clusters.models import SimulatedObject

    SimulatedObject.objects.update(ready_at=cluster.created_at)
    assert reconciler.reconcile(cluster.pk) == reconciler.Outcome.CONVERGED
    detail = client.get(url(organization, f"clusters/{cluster.public_id}/")).json()
    assert detail["state"] == "ready"
    # A dedicated cluster is all the tenant's: no prefix, and no note about one.
    assert detail["connection"]["name_prefix"] == ""
    assert "note" not in detail["connection"]


class TestBadInput:
    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"type": "platinum"}, "type"),
            ({"region": "mars-1"}, "region"),
            ({"capacity_units": 2}, "capacity_units"),
            ({"type": "dedicated", "capacity_units": 99}, "capacity_units"),
            ({"name": " "}, "name"),
        ],
    )
    def test_is_a_clear_error_that_creates_nothing(self, org, body, field):
        organization, client = org
        response = create(client, organization, **body)
        assert response.status_code == 400
        problem = response.json()
        assert problem["code"] == "validation"
        assert field in (problem.get("field"), *problem.get("errors", {}))
        assert not Cluster.unscoped_all_tenants.exists()

    def test_names_are_unique_among_live_clusters(self, org):
        organization, client = org
        assert create(client, organization).status_code == 202
        duplicate = create(client, organization)
        assert duplicate.status_code == 409
        assert duplicate.json()["field"] == "name"


def test_the_cluster_quota_says_which_limit_and_by_how_much(org):
    organization, client = org
    OrganizationQuota.objects.create(organization=organization, max_clusters=2)
    for name in ("a", "b"):
        assert create(client, organization, name=name).status_code == 202
    response = create(client, organization, name="c")
    assert response.status_code == 409
    problem = response.json()
    assert problem["code"] == "quota_exceeded"
    assert (problem["limit"], problem["maximum"], problem["current"], problem["excess"]) == (
        "clusters",
        2,
        2,
        1,
    )


def test_a_full_region_is_refused_cleanly(org):
    organization, client = org
    Cell.objects.update(max_shared_clusters=1)
    assert create(client, organization, name="a").status_code == 202
    response = create(client, organization, name="b")
    assert response.status_code == 503
    assert response.json()["code"] == "capacity_unavailable"


def test_placement_prefers_the_cell_with_room(org):
    organization, client = org
    Cell.objects.update(max_shared_clusters=1)
    make_cell(slug="eu-west-1-b", max_shared_clusters=5)
    assert create(client, organization, name="a").status_code == 202
    assert create(client, organization, name="b").status_code == 202
    cells = sorted(Cluster.unscoped_all_tenants.values_list("cell__slug", flat=True))
    assert cells == ["eu-west-1-a", "eu-west-1-b"] or cells == ["eu-west-1-b", "eu-west-1-b"]


class TestChanges:
    def test_rename_is_immediate_and_resize_is_an_operation(
        self, org, django_capture_on_commit_callbacks
    ):
        organization, client = org
        created = create(client, organization, type="dedicated").json()
        cluster_url = url(organization, f"clusters/{created['cluster']['id']}/")
        renamed = client.patch(cluster_url, {"name": "orders"}, format="json")
        assert renamed.status_code == 200
        assert renamed.json()["generation"] == 1
        resized = client.patch(cluster_url, {"capacity_units": 3}, format="json")
        assert resized.status_code == 202
        assert resized.json()["cluster"]["generation"] == 2
        assert resized.json()["operation"]["kind"] == "cluster.update"
        assert resized.json()["operation"]["target_generation"] == 2

    def test_serverless_to_dedicated(self, org, django_capture_on_commit_callbacks):
        organization, client = org
        with django_capture_on_commit_callbacks(execute=True):
            created = create(client, organization).json()
        cluster_url = url(organization, f"clusters/{created['cluster']['id']}/")
        with django_capture_on_commit_callbacks(execute=True):
            changed = client.patch(
                cluster_url, {"type": "dedicated", "capacity_units": 1}, format="json"
            )
        assert changed.status_code == 202
        cluster = client.get(cluster_url).json()
        assert (cluster["type"], cluster["generation"]) == ("dedicated", 2)
        assert cluster["state"] == "updating"  # the simulated brokers are on their way

    def test_delete_is_an_operation_and_the_cluster_goes(
        self, org, django_capture_on_commit_callbacks
    ):
        organization, client = org
        with django_capture_on_commit_callbacks(execute=True):
            created = create(client, organization).json()
        cluster_id = created["cluster"]["id"]
        with django_capture_on_commit_callbacks(execute=True):
            deleted = client.delete(url(organization, f"clusters/{cluster_id}/"))
        assert deleted.status_code == 202
        operation_id = deleted.json()["operation"]["id"]
        assert client.get(url(organization, f"clusters/{cluster_id}/")).status_code == 404
        assert client.get(url(organization, "clusters/")).json()["results"] == []
        assert (
            client.get(url(organization, f"operations/{operation_id}/")).json()["state"]
            == "succeeded"
        )
        actions = [
            e["action"]
            for e in client.get(url(organization, "audit-events/?target=" + cluster_id)).json()[
                "results"
            ]
        ]
        assert actions == ["cluster.deleted", "cluster.delete_requested", "cluster.created"]
        # The name is free again.
        assert create(client, organization).status_code == 202

    def test_only_a_failed_cluster_is_retried(self, org):
        organization, client = org
        created = create(client, organization).json()
        response = client.post(url(organization, f"clusters/{created['cluster']['id']}/retry/"))
        assert response.status_code == 409


def create_concurrently(attempts: list[tuple[str, object, str]]) -> list[int]:
    """Each (API key, organization, name) POSTed from its own thread, all released at once."""
    results: list[int] = []
    start = threading.Barrier(len(attempts))

    def attempt(key: str, organization, name: str) -> None:
        client = key_client(key)
        start.wait(timeout=10)
        try:
            results.append(create(client, organization, name=name).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=args) for args in attempts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_creations_never_exceed_the_quota():
    organization = make_org(owner=UserFactory())
    make_cell()
    OrganizationQuota.objects.create(organization=organization, max_clusters=3)
    _, key = make_api_key(organization, Role.ADMIN)
    results = create_concurrently([(key, organization, f"c{i}") for i in range(10)])
    assert sorted(results) == [202] * 3 + [409] * 7
    with tenant_scope(organization):
        assert Cluster.objects.count() == 3
        assert Operation.objects.count() == 3
        # A refused creation leaves nothing behind, not even its audit event.
        assert AuditEvent.objects.filter(action="cluster.created").count() == 3


@pytest.mark.django_db(transaction=True)
def test_concurrent_creations_of_one_name_make_one_cluster():
    """Past the name check together: the database's unique name refuses all but one, each
    answered 409 with nothing of it left behind."""
    organization = make_org(owner=UserFactory())
    make_cell()
    _, key = make_api_key(organization, Role.ADMIN)
    results = create_concurrently([(key, organization, "events")] * 6)
    assert sorted(results) == [202] + [409] * 5
    with tenant_scope(organization):
        assert Cluster.objects.filter(name="events").count() == 1
        assert Operation.objects.count() == 1
        assert AuditEvent.objects.filter(action="cluster.created").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_creations_never_overfill_a_cell():
    """Organizations placing at once (their quotas do not make them take turns) fill the
    region's cells exactly to capacity and are refused past it."""
    make_cell(slug="eu-west-1-a", max_shared_clusters=2)
    make_cell(slug="eu-west-1-b", max_shared_clusters=3)
    attempts = []
    for index in range(4):
        organization = make_org(owner=UserFactory(), name=f"Tenant {index}")
        _, key = make_api_key(organization, Role.ADMIN)
        attempts += [(key, organization, f"c{n}") for n in range(3)]
    results = create_concurrently(attempts)
    assert sorted(results) == [202] * 5 + [503] * 7
    placed = Cluster.unscoped_all_tenants.values("cell__slug").annotate(n=Count("pk"))
    assert {row["cell__slug"]: row["n"] for row in placed} == {"eu-west-1-a": 2, "eu-west-1-b": 3}


def test_viewers_read_but_do_not_write(org):
    organization, _ = org
    from tests.factories import add_member

    viewer = session_client(add_member(organization, Role.VIEWER).user)
    assert viewer.get(url(organization, "clusters/")).status_code == 200
    assert create(viewer, organization).status_code == 403
    assert json.loads(viewer.get(url(organization, "clusters/")).content)["results"] == []


def test_every_representation_of_a_cluster_is_the_declared_fields(
    org, django_capture_on_commit_callbacks
):
    """The cluster serializer builds its output in one go for speed; each shape a cluster takes
    must equal DRF's field-by-field output of the declared fields, and the list (which reads
    the type and region as joined values) must equal each cluster's own page."""
    from rest_framework import serializers

    from clusters.api.serializers import ClusterSerializer

    organization, client = org
    with django_capture_on_commit_callbacks(execute=True):
        accepted = create(client, organization, name="ready-serverless").json()["cluster"]
    create(client, organization, name="pending-dedicated", type="dedicated")
    failed = create(client, organization, name="failed").json()["cluster"]
    with tenant_scope(organization):
        Cluster.objects.filter(public_id=failed["id"]).update(
            state="failed", failure_reason="KafkaNotReady", failure_message="brokers crashed"
        )
        Cluster.objects.filter(name="pending-dedicated").update(
            state="ready", bootstrap_servers="kc-x-kafka-bootstrap.kc-x.svc:9093"
        )
        clusters = list(Cluster.objects.select_related("tier", "cell"))
    assert len(clusters) == 3
    for cluster in clusters:
        fast = ClusterSerializer(cluster).data
        generic = serializers.ModelSerializer.to_representation(ClusterSerializer(), cluster)
        assert fast == dict(generic), cluster.name
    listed = client.get(url(organization, "clusters/")).json()["results"]
    by_id = {c["id"]: c for c in listed}
    for cluster_id, body in by_id.items():
        assert client.get(url(organization, f"clusters/{cluster_id}/")).json() == body
    assert by_id[failed["id"]]["failure"]["reason"] == "KafkaNotReady"
    assert by_id[accepted["id"]]["connection"]["name_prefix"] == f"{accepted['id']}."
    dedicated = next(c for c in listed if c["name"] == "pending-dedicated")
    assert dedicated["connection"]["name_prefix"] == ""
    assert (dedicated["type"], dedicated["region"]) == ("dedicated", "eu-west-1")
