"""Creation guards (clusters/guards.py): the cluster and topic services ask every registered
guard before a cluster is created or reshaped and before a topic is created; a refusal rolls
the change back and reaches the API as its problem and the web UI as a form error. The guard
here is the test's own, registered for the test and removed after it."""

import pytest
from django.urls import reverse

from clusters import services
from clusters.guards import (
    CLUSTER_CREATE,
    CLUSTER_RESHAPE,
    TOPIC_CREATE,
    Creation,
    check_creation,
    register_creation_guard,
    unregister_creation_guard,
)
from clusters.models import Cluster, ClusterSize, Topic
from foundation.errors import PaymentMethodRequired
from tenants.audit import Actor
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, make_api_key, make_cell, make_cluster, make_org
from tests.support.clients import key_client
from tests.support.feedback import refused_page

pytestmark = pytest.mark.django_db

SYSTEM = Actor(system="tests")


# A foundation error, not one of the test's own: a DomainError subclass defined here would
# join the problem codes the OpenAPI description lists.
Refused = PaymentMethodRequired


class Guard:
    """Records what it is asked; refuses the actions in ``refuse``."""

    def __init__(self) -> None:
        self.asked: list[Creation] = []
        self.refuse: set[str] = set()

    def __call__(self, creation: Creation) -> None:
        self.asked.append(creation)
        if creation.action in self.refuse:
            raise Refused(f"No {creation.action} on {creation.tier.slug}", field="type")

    def actions(self) -> list[tuple[str, str, int, str | None]]:
        return [
            (c.action, c.tier.slug, c.capacity_units, c.cluster.name if c.cluster else None)
            for c in self.asked
        ]


@pytest.fixture
def guard():
    guard = Guard()
    register_creation_guard(guard)
    yield guard
    unregister_creation_guard(guard)


@pytest.fixture
def owner():
    return UserFactory()


@pytest.fixture
def org(owner):
    organization = make_org(owner=owner, name="Guarded")
    make_cell()
    return organization


def test_registering_twice_asks_once_and_unregistering_stops_asking(org, guard):
    register_creation_guard(guard)
    creation = Creation(organization=org, action=CLUSTER_CREATE, tier=None)
    check_creation(creation)
    assert guard.asked == [creation]
    unregister_creation_guard(guard)
    check_creation(creation)
    assert guard.asked == [creation]


def test_creating_and_reshaping_a_cluster_and_creating_a_topic_ask_the_guard(org, guard):
    cluster, _ = make_cluster(org, tier_slug="standard", name="events")
    with tenant_scope(org):
        services.cluster_update(cluster=cluster, actor=SYSTEM, name="renamed")  # no reshape
        services.cluster_update(cluster=cluster, actor=SYSTEM, tier_slug="dedicated")
        services.cluster_update(cluster=cluster, actor=SYSTEM, capacity_units=2)
        services.topic_create(cluster=cluster, actor=SYSTEM, name="orders", partitions=1)
    assert guard.actions() == [
        (CLUSTER_CREATE, "standard", 1, None),
        (CLUSTER_RESHAPE, "dedicated", 1, "renamed"),
        (CLUSTER_RESHAPE, "dedicated", 2, "renamed"),
        (TOPIC_CREATE, "dedicated", 2, "renamed"),
    ]
    assert {c.organization for c in guard.asked} == {org}


def test_a_refusal_changes_nothing(org, guard):
    cluster, _ = make_cluster(org, tier_slug="serverless", name="events")
    guard.refuse = {CLUSTER_CREATE, CLUSTER_RESHAPE, TOPIC_CREATE}
    with tenant_scope(org):
        with pytest.raises(Refused):
            services.cluster_create(
                organization=org,
                actor=SYSTEM,
                name="new",
                tier_slug="dedicated",
                region="eu-west-1",
            )
        with pytest.raises(Refused):
            services.cluster_update(cluster=cluster, actor=SYSTEM, tier_slug="standard")
        with pytest.raises(Refused):
            services.topic_create(cluster=cluster, actor=SYSTEM, name="orders", partitions=1)
        assert list(Cluster.objects.values_list("name", "tier__slug")) == [("events", "serverless")]
        assert ClusterSize.objects.count() == 1
        assert not Topic.objects.exists()


def test_the_api_answers_the_refusal_as_its_problem(org, guard):
    cluster, _ = make_cluster(org, name="events")
    guard.refuse = {CLUSTER_CREATE, TOPIC_CREATE}
    _key, secret = make_api_key(org, role=Role.OWNER)
    client = key_client(secret)
    base = f"/api/v1/orgs/{org.public_id}/clusters/"

    created = client.post(
        base, {"name": "new", "type": "standard", "region": "eu-west-1"}, format="json"
    )
    topic = client.post(
        f"{base}{cluster.public_id}/topics/", {"name": "orders", "partitions": 1}, format="json"
    )

    for response in (created, topic):
        assert response.status_code == 402
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == "payment_method_required"
    assert created.json()["detail"] == "No cluster.create on standard"


def test_the_web_form_shows_the_refusal_on_the_tier(org, owner, guard, client):
    guard.refuse = {CLUSTER_CREATE}
    client.force_login(owner)
    listing = reverse("clusters:list", kwargs={"org": org.public_id})
    response = client.post(listing, {"name": "events", "type": "standard", "region": "eu-west-1"})
    body = refused_page(client, response, listing, "create")
    assert "No cluster.create on standard" in body
    assert 'class="tier-picker has-error"' in body
    with tenant_scope(org):
        assert not Cluster.objects.exists()
