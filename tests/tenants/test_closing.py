"""Closing an organization: an owner's act, confirmed by the organization's name, refused while
a cluster is left (or still being deleted); from then on the organization is gone for its
members and keys (404, 401), its keys and pending invitations revoked, and operators still
see it. Through the API and the web UI alike."""

from urllib.parse import urlencode

import pytest
from django.urls import reverse
from django.utils import timezone

from clusters import services as cluster_services
from clusters.models import Cluster, ClusterState
from foundation.errors import NotFound, NotPermitted
from tenants import services
from tenants.audit import Actor
from tenants.models import ApiKey, AuditEvent, Invitation, Organization
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, add_member, make_api_key, make_cluster, make_org
from tests.support.clients import key_client, session_client
from tests.support.feedback import refused_page

pytestmark = pytest.mark.django_db


def close_url(organization, confirm=None) -> str:
    url = reverse("organization-detail", kwargs={"org": organization.public_id})
    return url if confirm is None else f"{url}?{urlencode({'confirm': confirm})}"


def delete_cluster(cluster) -> None:
    """As the reconciler leaves it once the data plane let it go."""
    Cluster.unscoped_all_tenants.filter(pk=cluster.pk).update(
        state=ClusterState.DELETED, deleted_at=timezone.now()
    )


@pytest.fixture
def acme():
    owner = UserFactory()
    organization = make_org(owner=owner, name="Acme Streaming")
    return organization, owner


def closed(organization) -> bool:
    return Organization.objects.get(pk=organization.pk).closed_at is not None


# The API -------------------------------------------------------------------------------------


def test_an_owner_closes_the_organization_and_its_keys_and_invitations_end(acme):
    organization, owner = acme
    developer_key, _ = make_api_key(organization, Role.DEVELOPER)
    with tenant_scope(organization):
        services.invitation_create(
            organization=organization,
            email="later@example.com",
            role=Role.VIEWER,
            actor=Actor(user=owner),
            actor_role=Role.OWNER,
            accept_url_base="http://testserver/invitations/",
        )

    response = session_client(owner).delete(close_url(organization, "Acme Streaming"))

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["id"], body["name"], body["role"]) == (
        organization.public_id,
        "Acme Streaming",
        "owner",
    )
    organization.refresh_from_db()
    assert body["closed_at"] is not None
    assert organization.closed_at is not None
    assert organization.closed_by == owner
    with tenant_scope(organization):
        assert ApiKey.objects.get(pk=developer_key.pk).revoked_at is not None
        assert Invitation.objects.get().state == Invitation.State.REVOKED
        event = AuditEvent.objects.get(action="organization.closed")
        assert event.actor_user == owner
        assert event.after["api_keys_revoked"] == 1
        assert event.after["invitations_revoked"] == 1
        revoked = AuditEvent.objects.get(action="api_key.revoked")
        assert revoked.after["reason"] == "organization_closed"
    # Nothing is deleted: the members and the trail are still there.
    assert organization.memberships.model.unscoped_all_tenants.filter(
        organization=organization
    ).exists()


def test_an_owners_api_key_may_close_it_too(acme):
    organization, _ = acme
    _key, secret = make_api_key(organization, Role.OWNER)
    response = key_client(secret).delete(close_url(organization, "Acme Streaming"))
    assert response.status_code == 200, response.content
    assert closed(organization)


@pytest.mark.parametrize("role", [Role.ADMIN, Role.BILLING, Role.DEVELOPER, Role.VIEWER])
def test_no_other_role_may_close_it(acme, role):
    organization, _ = acme
    member = add_member(organization, role).user
    response = session_client(member).delete(close_url(organization, "Acme Streaming"))
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    _key, secret = make_api_key(organization, role)
    assert key_client(secret).delete(close_url(organization, "Acme Streaming")).status_code == 403
    assert not closed(organization)


def test_the_service_refuses_anyone_but_an_owner(acme):
    organization, owner = acme
    with tenant_scope(organization), pytest.raises(NotPermitted):
        services.organization_close(
            organization=organization,
            actor=Actor(user=owner),
            actor_role=Role.ADMIN,
            confirm_name="Acme Streaming",
        )
    assert not closed(organization)


def test_the_name_must_be_typed_exactly(acme):
    organization, owner = acme
    client = session_client(owner)
    for confirm in ("acme streaming", "Acme", ""):
        response = client.delete(close_url(organization, confirm))
        assert response.status_code == 400, confirm
    wrong = client.delete(close_url(organization, "acme streaming")).json()
    assert (wrong["code"], wrong["field"]) == ("confirmation_mismatch", "confirm")
    missing = client.delete(close_url(organization)).json()
    assert missing["code"] == "validation"
    assert "confirm" in missing["errors"]
    assert not closed(organization)


def test_refused_while_a_cluster_lives_or_is_still_being_deleted(acme):
    organization, owner = acme
    events, _ = make_cluster(organization, name="events")
    orders, _ = make_cluster(organization, name="orders")
    client = session_client(owner)

    refused = client.delete(close_url(organization, "Acme Streaming"))
    assert refused.status_code == 409
    problem = refused.json()
    assert (problem["code"], problem["clusters"]) == ("organization_has_clusters", 2)

    delete_cluster(events)
    with tenant_scope(organization):
        cluster_services.cluster_delete(cluster=orders, actor=Actor(user=owner))
    assert Cluster.unscoped_all_tenants.get(pk=orders.pk).state == ClusterState.DELETING
    # Its deletion is still running: it still blocks.
    still = client.delete(close_url(organization, "Acme Streaming")).json()
    assert (still["code"], still["clusters"]) == ("organization_has_clusters", 1)
    assert not closed(organization)

    delete_cluster(orders)
    assert client.delete(close_url(organization, "Acme Streaming")).status_code == 200
    assert closed(organization)


def test_members_lose_access_at_once_and_keep_their_other_organizations(acme):
    organization, owner = acme
    viewer = add_member(organization, Role.VIEWER).user
    other = make_org(owner=viewer, name="Viewer's Own")
    _key, org_secret = make_api_key(organization, Role.VIEWER)
    _other_key, other_secret = make_api_key(other, Role.OWNER)
    viewer_client = session_client(viewer)
    assert viewer_client.get(close_url(organization)).status_code == 200

    assert (
        session_client(owner).delete(close_url(organization, "Acme Streaming")).status_code == 200
    )

    # Gone for everyone, as an unknown organization is.
    for client in (viewer_client, session_client(owner)):
        response = client.get(close_url(organization))
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
        assert client.get(f"/api/v1/orgs/{organization.public_id}/members/").status_code == 404
        assert client.get(f"/orgs/{organization.public_id}/").status_code == 404
    # Closing it again: there is nothing to close.
    assert (
        session_client(owner).delete(close_url(organization, "Acme Streaming")).status_code == 404
    )
    # Its keys are refused, whatever they ask.
    assert key_client(org_secret).get(close_url(organization)).status_code == 401
    assert key_client(org_secret).get("/api/v1/orgs/").status_code == 401
    # Nobody's list has it; the viewer's own organization is untouched.
    listed = viewer_client.get("/api/v1/orgs/").json()["results"]
    assert [o["id"] for o in listed] == [other.public_id]
    assert viewer_client.get(close_url(other)).status_code == 200
    assert key_client(other_secret).get(close_url(other)).status_code == 200
    assert session_client(owner).get("/api/v1/orgs/").json()["results"] == []


def test_a_key_of_a_closed_organization_is_refused_even_if_not_revoked(acme):
    organization, _owner = acme
    key, secret = make_api_key(organization, Role.OWNER)
    assert key_client(secret).delete(close_url(organization, "Acme Streaming")).status_code == 200
    # Revoked with the closing; were it not, the closed organization would still refuse it.
    ApiKey.unscoped_all_tenants.filter(pk=key.pk).update(revoked_at=None)
    assert key_client(secret).get(close_url(organization)).status_code == 401


def test_another_organizations_owner_cannot_close_it(acme):
    organization, _ = acme
    intruder = UserFactory()
    theirs = make_org(owner=intruder, name="Acme Streaming")  # the same name, even
    _key, secret = make_api_key(theirs, Role.OWNER)
    for client in (session_client(intruder), key_client(secret)):
        response = client.delete(close_url(organization, "Acme Streaming"))
        assert response.status_code == 404
    assert not closed(organization)
    assert not closed(theirs)


def test_a_cluster_cannot_be_made_in_an_organization_closed_meanwhile(acme):
    organization, owner = acme
    with tenant_scope(organization):
        services.organization_close(
            organization=organization,
            actor=Actor(user=owner),
            actor_role=Role.OWNER,
            confirm_name="Acme Streaming",
        )
    # A request that passed the gate before the closing committed reaches the service after it.
    with pytest.raises(NotFound):
        make_cluster(organization, name="late")
    assert not Cluster.unscoped_all_tenants.filter(organization=organization).exists()


# The web UI ----------------------------------------------------------------------------------


def settings_url(organization) -> str:
    return reverse("tenants:settings", args=[organization.public_id])


def test_the_settings_page_explains_closing_and_what_stands_in_the_way(acme, client):
    organization, owner = acme
    make_cluster(organization, name="events")
    client.force_login(owner)
    html = client.get(settings_url(organization)).content.decode()
    assert "Close organization" in html
    assert "1 cluster is not deleted yet" in html
    assert reverse("clusters:list", args=[organization.public_id]) in html
    assert "final invoice" in html
    assert "7 to 10 years" in html
    # The tab is the owners' only.
    admin = add_member(organization, Role.ADMIN).user
    client.force_login(admin)
    assert client.get(settings_url(organization)).status_code == 403
    members = client.get(reverse("tenants:members", args=[organization.public_id]))
    assert settings_url(organization) not in members.content.decode()


def test_closing_from_the_settings_page(acme, client):
    organization, owner = acme
    cluster, _ = make_cluster(organization, name="events")
    client.force_login(owner)

    refused = client.post(settings_url(organization), {"confirm": "Acme Streaming"})
    page = refused_page(client, refused, settings_url(organization), "close")
    assert "1 cluster is not deleted yet" in page
    delete_cluster(cluster)

    mistyped = client.post(settings_url(organization), {"confirm": "Acme"})
    page = refused_page(client, mistyped, settings_url(organization), "close")
    assert "Type the organization&#x27;s name exactly" in page
    assert not closed(organization)

    done = client.post(settings_url(organization), {"confirm": "Acme Streaming"})
    assert done.status_code == 303
    assert done["Location"] == reverse("home")
    home = client.get(reverse("home")).content.decode()
    assert "Acme Streaming is closed." in home
    assert organization.public_id not in home
    assert closed(organization)
    assert client.get(settings_url(organization)).status_code == 404


def test_operators_still_see_a_closed_organization(acme, client):
    organization, owner = acme
    make_org(name="Still Open")
    with tenant_scope(organization):
        services.organization_close(
            organization=organization,
            actor=Actor(user=owner),
            actor_role=Role.OWNER,
            confirm_name="Acme Streaming",
        )
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    closed_list = client.get("/admin/tenants/organization/?state=closed").content.decode()
    assert "Acme Streaming" in closed_list
    assert "Still Open" not in closed_list
    open_list = client.get("/admin/tenants/organization/?state=open").content.decode()
    assert "Still Open" in open_list
    assert "Acme Streaming" not in open_list
    page = client.get(f"/admin/tenants/organization/{organization.pk}/change/")
    assert page.status_code == 200
    assert "Closed at" in page.content.decode()
    assert "closed_at" in client.get("/admin/tenants/organization/").content.decode()
