"""The audit page names each target (as it was called when the event was recorded) and shows
before and after values in human units: durations, byte rates, numbers with separators."""

import re

import pytest
from django.test import Client

from clusters import services
from tenants.audit import Actor
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, make_cluster, make_org

pytestmark = pytest.mark.django_db


def rows(page: str) -> list[str]:
    body = page[page.index("<tbody>") : page.index("</tbody>")]
    return [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in body.split("<tr>")[1:]]


def test_targets_by_name_and_values_in_human_units():
    owner = UserFactory(email="owner@audit.example")
    organization = make_org(owner=owner, name="Audit Co")
    cluster, _ = make_cluster(organization, name="events")
    actor = Actor(user=owner)
    with tenant_scope(organization):
        services.topic_create(
            cluster=cluster,
            actor=actor,
            name="orders",
            partitions=1200,
            retention_ms=7 * 86_400_000,
        )
        credential, _, _ = services.credential_create(cluster=cluster, actor=actor, name="app")
        services.credential_update_quotas(
            credential=credential, actor=actor, producer_byte_rate=2_500_000
        )
    client = Client()
    client.force_login(owner)
    shown = rows(client.get(f"/orgs/{organization.public_id}/audit/").content.decode())

    quotas = next(row for row in shown if "credential.quotas_changed" in row)
    assert "app credential" in quotas
    assert "producer_byte_rate: 2.5 MB/s" in quotas
    topic = next(row for row in shown if "topic.created" in row)
    assert "events cluster" in topic
    assert "topic: orders" in topic
    assert "partitions: 1,200" in topic
    assert "retention_ms: 7 days" in topic
    created = next(row for row in shown if "cluster.created" in row)
    assert "events cluster" in created
