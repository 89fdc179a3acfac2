"""The organization's quota use, shown before a limit is hit (the clusters page and the
settings page), and the first steps a new organization is shown on its clusters page, ticked
off as they are done."""

import re
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from billing.services import HourSnapshot, record_hours
from clusters import services
from clusters.models import Dimension, OrganizationQuota
from clusters.quota_use import quota_use
from tenants.audit import Actor
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, make_cluster, make_org
from tests.support.clients import session_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return UserFactory(email="owner@quota.example")


@pytest.fixture
def org(owner):
    return make_org(owner=owner, name="Quota Co")


def text(markup: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", markup).split())


def test_quota_use_counts_as_the_services_do(org, owner):
    OrganizationQuota.objects.create(
        organization=org, max_clusters=2, max_partitions=1500, max_credentials=10
    )
    cluster, _ = make_cluster(org)
    with tenant_scope(org):
        services.topic_create(cluster=cluster, actor=Actor(user=owner), name="a", partitions=3)
        uses = quota_use(organization=org)
    assert [(use.label, use.used, use.limit, use.level) for use in uses] == [
        ("Clusters", 1, 2, "ok"),
        ("Partitions", 3, 1500, "ok"),
        ("Credentials", 0, 10, "ok"),
    ]


def test_the_clusters_page_shows_the_use_near_and_at_the_limit(org, owner):
    OrganizationQuota.objects.create(
        organization=org, max_clusters=1, max_partitions=1250, max_credentials=5
    )
    cluster, _ = make_cluster(org)
    with tenant_scope(org):
        services.topic_create(
            cluster=cluster, actor=Actor(user=owner), name="wide", partitions=1000
        )
    page = text(
        session_client(owner).get(reverse("clusters:list", args=[org.public_id])).content.decode()
    )
    assert "Clusters 1 of 1 · limit reached" in page
    assert "Partitions 1,000 of 1,250 · near the limit" in page  # 80 %: before it is hit
    assert "Credentials 0 of 5" in page


def test_the_settings_page_shows_the_quota_use(org, owner):
    page = text(
        session_client(owner)
        .get(reverse("tenants:settings", args=[org.public_id]))
        .content.decode()
    )
    assert "Quotas" in page
    assert "Clusters 0 of" in page


def steps_of(client, org) -> str | None:
    page = client.get(reverse("clusters:list", args=[org.public_id])).content.decode()
    if 'id="first-steps"' not in page:
        return None
    panel = page[
        page.index('id="first-steps"') : page.index("</section>", page.index('id="first-steps"'))
    ]
    return " ".join(
        ("✓ " if "step-done" in item else "") + text(item.split(">", 1)[1]).lstrip("0123456789✓ ")
        for item in panel.split("<li")[1:]
    )


def test_the_first_steps_tick_off_and_go_away(org, owner):
    client = session_client(owner)
    assert steps_of(client, org) == (
        "Create a cluster Create a topic Create a credential Connect a client"
    )
    cluster, _ = make_cluster(org)
    with tenant_scope(org):
        services.topic_create(cluster=cluster, actor=Actor(user=owner), name="a", partitions=1)
    assert steps_of(client, org) == (
        "✓ Create a cluster (done) ✓ Create a topic (done) Create a credential Connect a client"
    )
    with tenant_scope(org):
        services.credential_create(cluster=cluster, actor=Actor(user=owner), name="app")
    # Connected: once a client's bytes were metered.
    assert steps_of(client, org).endswith("✓ Create a credential (done) Connect a client")
    hour = datetime(2026, 11, 2, 10, tzinfo=UTC)
    record_hours([HourSnapshot(cluster.pk, Dimension.INGRESS_BYTES, hour, 1_024, True)])
    assert steps_of(client, org) is None
