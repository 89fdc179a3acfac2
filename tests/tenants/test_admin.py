"""The operators' dashboard spans every tenant, and keeps the audit trail read-only."""

import pytest

from tenants.models import AuditEvent, Organization
from tenants.roles import Role
from tests.factories import UserFactory, add_member, make_api_key, make_org
from tests.support.clients import session_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_operators_see_every_tenant(operator_client):
    for name in ("First Tenant", "Second Tenant"):
        owner = UserFactory()
        organization = make_org(owner=owner, name=name)
        add_member(organization, Role.VIEWER)
        make_api_key(organization)
        invited = session_client(owner).post(
            f"/api/v1/orgs/{organization.public_id}/invitations/",
            {"email": f"invitee@{name.split()[0].lower()}.example", "role": "viewer"},
            format="json",
        )
        assert invited.status_code == 201, invited.content
    for model in ("apikey", "invitation", "auditevent"):
        response = operator_client.get(f"/admin/tenants/{model}/")
        assert response.status_code == 200, model
        html = response.content.decode()
        assert "First Tenant" in html, model
        assert "Second Tenant" in html, model
    first = Organization.objects.get(name="First Tenant")
    change = operator_client.get(f"/admin/tenants/organization/{first.pk}/change/")
    assert change.status_code == 200
    assert change.content.decode().count("-role") >= 2  # the owner and the viewer, inline
    assert operator_client.get("/admin/tenants/organization/add/").status_code == 200


def test_audit_events_cannot_be_changed_or_deleted_from_the_admin(operator_client):
    organization = make_org()
    event = AuditEvent.unscoped_all_tenants.filter(organization=organization).first()
    url = f"/admin/tenants/auditevent/{event.pk}/"
    assert operator_client.post(url + "change/", {"action": "forged"}).status_code == 403
    assert operator_client.post(url + "delete/", {"post": "yes"}).status_code == 403
    event.refresh_from_db()
    assert event.action != "forged"


def test_tenants_are_not_operators(client):
    organization = make_org()
    owner = organization.memberships.model.unscoped_all_tenants.get(organization=organization).user
    client.force_login(owner)
    response = client.get("/admin/tenants/organization/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
