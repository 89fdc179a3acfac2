"""Topics and credentials through the API: validation against the tier, quotas that hold under
concurrency, passwords shown once and stored sealed."""

import threading

import pytest
from django.db import connection

from clusters.models import Credential, OrganizationQuota, Topic
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, make_api_key, make_cell, make_cluster, make_org
from tests.support.clients import key_client, session_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def cluster(db):
    owner = UserFactory()
    organization = make_org(owner=owner, name="Topical")
    make_cell()
    cluster, _ = make_cluster(organization)
    return cluster, session_client(owner)


def base(cluster) -> str:
    return f"/api/v1/orgs/{cluster.organization.public_id}/clusters/{cluster.public_id}"


class TestTopics:
    def test_a_patch_that_changes_nothing_answers_the_topic_and_opens_nothing(self, cluster):
        cluster, client = cluster
        created = client.post(
            f"{base(cluster)}/topics/", {"name": "orders", "partitions": 3}, format="json"
        )
        assert created.status_code == 202
        retention = created.json()["topic"]["retention_ms"]
        with tenant_scope(cluster.organization):
            generation = cluster.__class__.objects.get(pk=cluster.pk).generation
            operations = cluster.operations.count()
        for body in ({}, {"partitions": 3}, {"retention_ms": retention, "configs": {}}):
            response = client.patch(f"{base(cluster)}/topics/orders/", body, format="json")
            assert response.status_code == 200, (body, response.content)
            assert response.json()["name"] == "orders"
            assert response.json()["partitions"] == 3
        with tenant_scope(cluster.organization):
            assert cluster.__class__.objects.get(pk=cluster.pk).generation == generation
            assert cluster.operations.count() == operations
        changed = client.patch(f"{base(cluster)}/topics/orders/", {"partitions": 4}, format="json")
        assert changed.status_code == 202
        assert changed.json()["operation"]["kind"] == "topic.update"

    def test_topics_are_listed_by_name_across_pages(self, cluster):
        cluster, client = cluster
        for name in ("payments", "audit", "orders", "billing", "clicks"):
            response = client.post(
                f"{base(cluster)}/topics/", {"name": name, "partitions": 1}, format="json"
            )
            assert response.status_code == 202
        names: list[str] = []
        url = f"{base(cluster)}/topics/?limit=2"
        for _ in range(5):
            page = client.get(url).json()
            names += [topic["name"] for topic in page["results"]]
            url = page["next"]
            if not url:
                break
        assert names == ["audit", "billing", "clicks", "orders", "payments"]

    def test_create_list_grow_and_delete(self, cluster):
        cluster, client = cluster
        created = client.post(
            f"{base(cluster)}/topics/",
            {"name": "orders", "partitions": 6, "configs": {"compression.type": "zstd"}},
            format="json",
        )
        assert created.status_code == 202
        topic = created.json()["topic"]
        assert topic["kafka_name"] == f"{cluster.public_id}.orders"
        assert topic["retention_ms"] == 7 * 24 * 3_600_000
        assert created.json()["operation"]["kind"] == "topic.create"
        listed = client.get(f"{base(cluster)}/topics/").json()["results"]
        assert [t["name"] for t in listed] == ["orders"]

        grown = client.patch(f"{base(cluster)}/topics/orders/", {"partitions": 12}, format="json")
        assert grown.status_code == 202
        assert grown.json()["topic"]["partitions"] == 12
        shrunk = client.patch(f"{base(cluster)}/topics/orders/", {"partitions": 3}, format="json")
        assert shrunk.status_code == 400
        assert "cannot take partitions away" in shrunk.json()["detail"]

        deleted = client.delete(f"{base(cluster)}/topics/orders/")
        assert deleted.status_code == 202
        assert deleted["Location"].endswith(f"/operations/{deleted.json()['id']}/")
        assert client.get(f"{base(cluster)}/topics/orders/").status_code == 404
        with tenant_scope(cluster.organization):
            assert Topic.objects.get(name="orders").deleted_at is not None

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"name": "bad name!", "partitions": 1}, "name"),
            ({"name": "__consumer_offsets", "partitions": 1}, "name"),
            ({"name": "x" * 240, "partitions": 1}, "name"),  # no room for the serverless prefix
            ({"name": "ok", "partitions": 0}, "partitions"),
            ({"name": "ok", "partitions": 1, "retention_ms": 10**12}, "retention_ms"),
            (
                {
                    "name": "ok",
                    "partitions": 1,
                    "configs": {"unclean.leader.election.enable": "true"},
                },
                "configs",
            ),
            (
                {"name": "ok", "partitions": 1, "configs": {"max.message.bytes": "999999999"}},
                "configs",
            ),
        ],
    )
    def test_bad_input_is_refused_and_creates_nothing(self, cluster, body, field):
        cluster, client = cluster
        response = client.post(f"{base(cluster)}/topics/", body, format="json")
        assert response.status_code == 400
        problem = response.json()
        assert field in (problem.get("field"), *problem.get("errors", {}))
        with tenant_scope(cluster.organization):
            assert not Topic.objects.exists()

    def test_the_tier_partition_limit(self, cluster):
        cluster, client = cluster
        limit = cluster.tier.max_partitions
        ok = client.post(
            f"{base(cluster)}/topics/", {"name": "big", "partitions": limit - 1}, format="json"
        )
        assert ok.status_code == 202
        over = client.post(
            f"{base(cluster)}/topics/", {"name": "more", "partitions": 3}, format="json"
        )
        assert over.status_code == 409
        problem = over.json()
        assert (problem["code"], problem["limit"], problem["maximum"], problem["excess"]) == (
            "quota_exceeded",
            "partitions_per_cluster",
            limit,
            2,
        )


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_topic_creations_at_the_partition_limit_never_exceed_it():
    owner = UserFactory()
    organization = make_org(owner=owner)
    make_cell()
    cluster, _ = make_cluster(organization)
    OrganizationQuota.objects.filter(organization=organization).update(max_partitions=20)
    _, key = make_api_key(organization, Role.ADMIN)
    statuses: list[int] = []
    start = threading.Barrier(50)

    def attempt(index: int) -> None:
        client = key_client(key)
        start.wait(timeout=30)
        try:
            response = client.post(
                f"{base(cluster)}/topics/", {"name": f"t{index}", "partitions": 3}, format="json"
            )
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(statuses) == 50
    assert statuses.count(202) == 6  # 6 x 3 = 18 partitions; a 7th would make 21 > 20
    assert statuses.count(409) == 44
    with tenant_scope(organization):
        total = sum(
            Topic.objects.filter(deleted_at__isnull=True).values_list("partitions", flat=True)
        )
    assert total == 18


class TestCredentials:
    def test_the_password_is_shown_once_and_stored_sealed(self, cluster):
        cluster, client = cluster
        created = client.post(
            f"{base(cluster)}/credentials/",
            {"name": "orders service", "producer_byte_rate": 5_000_000},
            format="json",
        )
        assert created.status_code == 202
        assert created["Cache-Control"] == "no-store"
        credential = created.json()["credential"]
        password = credential["password"]
        assert len(password) >= 40
        assert (
            f'username="{credential["username"]}" password="{password}"'
            in credential["sasl_jaas_config"]
        )
        assert credential["producer_byte_rate"] == 5_000_000
        shown = client.get(f"{base(cluster)}/credentials/{credential['id']}/").json()
        assert "password" not in shown
        with tenant_scope(cluster.organization):
            stored = Credential.objects.get(public_id=credential["id"])
        assert password.encode() not in bytes(stored.password_encrypted)

        rotated = client.post(f"{base(cluster)}/credentials/{credential['id']}/rotate/")
        assert rotated.status_code == 202
        assert rotated.json()["credential"]["password"] != password
        assert rotated.json()["operation"]["kind"] == "credential.rotate"

    def test_quotas_stay_within_the_tier(self, cluster):
        cluster, client = cluster
        credential = client.post(
            f"{base(cluster)}/credentials/", {"name": "app"}, format="json"
        ).json()["credential"]
        url = f"{base(cluster)}/credentials/{credential['id']}/"
        too_fast = client.patch(url, {"producer_byte_rate": 10**12}, format="json")
        assert too_fast.status_code == 400
        assert too_fast.json()["field"] == "producer_byte_rate"
        changed = client.patch(url, {"consumer_byte_rate": 2_000_000}, format="json")
        assert changed.status_code == 202
        assert changed.json()["credential"]["consumer_byte_rate"] == 2_000_000

    def test_the_credential_quota(self, cluster):
        cluster, client = cluster
        OrganizationQuota.objects.filter(organization=cluster.organization).update(
            max_credentials=1
        )
        assert (
            client.post(f"{base(cluster)}/credentials/", {"name": "a"}, format="json").status_code
            == 202
        )
        over = client.post(f"{base(cluster)}/credentials/", {"name": "b"}, format="json")
        assert over.status_code == 409
        assert (over.json()["limit"], over.json()["maximum"]) == ("credentials", 1)

    def test_delete(self, cluster):
        cluster, client = cluster
        credential = client.post(
            f"{base(cluster)}/credentials/", {"name": "app"}, format="json"
        ).json()["credential"]
        deleted = client.delete(f"{base(cluster)}/credentials/{credential['id']}/")
        assert deleted.status_code == 202
        assert deleted["Location"].endswith(f"/operations/{deleted.json()['id']}/")
        assert client.get(f"{base(cluster)}/credentials/").json()["results"] == []


def test_list_endpoints_read_a_fixed_number_of_rows_whatever_the_page(cluster):
    """No N+1: listing one or five topics, credentials, operations or clusters costs the same
    number of queries."""
    from django.test.utils import CaptureQueriesContext

    from clusters import services
    from tenants.audit import Actor

    cluster, client = cluster
    organization = cluster.organization
    lists = {
        "topics": f"{base(cluster)}/topics/",
        "credentials": f"{base(cluster)}/credentials/",
        "operations": f"/api/v1/orgs/{organization.public_id}/operations/",
        "clusters": f"/api/v1/orgs/{organization.public_id}/clusters/",
    }

    def add(index: int) -> None:
        with tenant_scope(organization):
            actor = Actor(system="tests")
            services.topic_create(cluster=cluster, actor=actor, name=f"t{index}", partitions=1)
            services.credential_create(cluster=cluster, actor=actor, name=f"c{index}")
            services.cluster_create(
                organization=organization,
                actor=actor,
                name=f"more-{index}",
                tier_slug="serverless",
                region="eu-west-1",
            )

    def queries() -> dict[str, int]:
        counts = {}
        for name, path in lists.items():
            with CaptureQueriesContext(connection) as captured:
                assert client.get(path).status_code == 200
            counts[name] = len(captured)
        return counts

    add(0)
    few = queries()
    for index in range(1, 5):
        add(index)
    listed = client.get(lists["topics"]).json()["results"]
    assert sorted(topic["name"] for topic in listed) == ["t0", "t1", "t2", "t3", "t4"]
    assert queries() == few
