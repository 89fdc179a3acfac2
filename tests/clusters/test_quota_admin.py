"""An operator's change of an organization's quotas in the admin is recorded in that
organization's audit trail, before and after, and shown on its audit page."""

import pytest
from django.test import Client

from clusters.models import OrganizationQuota
from tenants.models import AuditEvent
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, make_org

pytestmark = pytest.mark.django_db


def quota_events(organization) -> list[tuple]:
    with tenant_scope(organization):
        return list(
            AuditEvent.objects.filter(action__startswith="quota.")
            .order_by("id")
            .values_list("action", "actor_label", "before", "after")
        )


def test_quota_changes_by_an_operator_reach_the_audit_trail():
    owner = UserFactory(email="owner@quota-admin.example")
    organization = make_org(owner=owner, name="Quota Admin Co")
    operator = UserFactory(email="ops@sluice.example", is_staff=True, is_superuser=True)
    admin = Client()
    admin.force_login(operator)
    fields = {"organization": organization.pk, "max_partitions": 3000, "max_credentials": 50}

    added = admin.post("/admin/clusters/organizationquota/add/", {**fields, "max_clusters": 10})
    assert added.status_code == 302, added.content
    quota = OrganizationQuota.objects.get(organization=organization)
    changed = admin.post(
        f"/admin/clusters/organizationquota/{quota.pk}/change/", {**fields, "max_clusters": 25}
    )
    assert changed.status_code == 302
    # Saved again unchanged: nothing to record.
    admin.post(
        f"/admin/clusters/organizationquota/{quota.pk}/change/", {**fields, "max_clusters": 25}
    )
    deleted = admin.post(f"/admin/clusters/organizationquota/{quota.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302

    limits = {"max_partitions": 3000, "max_credentials": 50}
    assert quota_events(organization) == [
        ("quota.changed", "ops@sluice.example", None, {"max_clusters": 10, **limits}),
        (
            "quota.changed",
            "ops@sluice.example",
            {"max_clusters": 10, **limits},
            {"max_clusters": 25, **limits},
        ),
        (
            "quota.reset",
            "ops@sluice.example",
            {"max_clusters": 25, **limits},
            {"max_clusters": 10, "max_partitions": 10_000, "max_credentials": 200},
        ),
    ]

    owner_client = Client()
    owner_client.force_login(owner)
    page = owner_client.get(f"/orgs/{organization.public_id}/audit/").content.decode()
    assert "quota.changed" in page
    assert "ops@sluice.example" in page
