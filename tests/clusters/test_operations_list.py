"""A cluster's operations list says what each operation changed: its target by name and the
values before and after, in the units the audit page uses (the operation keeps the audit event
of the request that opened it). The system's own operations (a throttle) have none."""

import re

import pytest
from django.test import Client

from clusters import lifecycle, services
from clusters.models import Operation
from tenants.audit import Actor
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, make_cluster, make_org

pytestmark = pytest.mark.django_db


def operation_rows(page: str) -> list[str]:
    table = page[page.index("Recent operations") :]
    body = table[table.index("<tbody>") : table.index("</tbody>")]
    return [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in body.split("<tr>")[1:]]


def test_each_operation_names_its_target_and_its_values_before_and_after():
    owner = UserFactory()
    organization = make_org(owner=owner, name="Ops Co")
    cluster, _ = make_cluster(organization, name="events")
    actor = Actor(user=owner)
    with tenant_scope(organization):
        topic, _ = services.topic_create(
            cluster=cluster, actor=actor, name="orders", partitions=3, retention_ms=86_400_000
        )
        services.topic_update(
            topic=topic, actor=actor, partitions=1_500, retention_ms=7 * 86_400_000
        )
        credential, _, _ = services.credential_create(cluster=cluster, actor=actor, name="app")
        services.credential_update_quotas(
            credential=credential, actor=actor, producer_byte_rate=2_500_000
        )
        operations = list(Operation.objects.filter(cluster=cluster).order_by("created_at"))
    assert all(operation.audit_event_id for operation in operations)

    client = Client()
    client.force_login(owner)
    page = client.get(f"/orgs/{organization.public_id}/clusters/{cluster.public_id}/")
    shown = operation_rows(page.content.decode())

    grown = next(row for row in shown if row.startswith("topic.update"))
    assert "events" in grown  # a topic's events are its cluster's
    assert "topic: orders → orders" in grown
    assert "partitions: 3 → 1,500" in grown
    assert "retention_ms: 1 day → 7 days" in grown
    quotas = next(row for row in shown if row.startswith("credential.update"))
    assert "app" in quotas
    assert "producer_byte_rate:" in quotas
    assert "2.5 MB/s" in quotas
    created = next(row for row in shown if row.startswith("cluster.create"))
    assert "name: events" in created


def test_an_operation_the_system_opened_shows_no_change():
    owner = UserFactory()
    organization = make_org(owner=owner, name="Throttled Co")
    cluster, _ = make_cluster(organization, name="events")
    with tenant_scope(organization):
        operation = lifecycle.request_throttle(
            cluster, reason="Reached the spend cap", actor=Actor(system="spend-caps")
        )
    assert operation.audit_event is None
    client = Client()
    client.force_login(owner)
    page = client.get(f"/orgs/{organization.public_id}/clusters/{cluster.public_id}/")
    throttle = next(row for row in operation_rows(page.content.decode()) if "throttle" in row)
    assert throttle.startswith("cluster.throttle — ")
