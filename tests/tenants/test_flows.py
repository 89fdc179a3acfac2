"""What organizations, members, invitations and API keys do, through the API, and the audit
trail each change leaves."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from tenants.models import ApiKey, Invitation, Membership
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, add_member, make_api_key
from tests.support.clients import key_client, session_client

pytestmark = pytest.mark.django_db


def org_url(organization, rest: str = "") -> str:
    return f"/api/v1/orgs/{organization.public_id}/{rest}"


def token_from_last_mail() -> str:
    line = next(line for line in mail.outbox[-1].body.splitlines() if "/invitations/" in line)
    return line.strip().rstrip("/").rsplit("/", 1)[1]


def audit_actions(client, organization, query: str = "") -> list[str]:
    events = client.get(org_url(organization, f"audit-events/{query}")).json()["results"]
    return [event["action"] for event in events]


def test_creating_an_organization_makes_you_its_owner():
    user = UserFactory()
    client = session_client(user)
    created = client.post("/api/v1/orgs/", {"name": "  Streamline  "}, format="json")
    assert created.status_code == 201
    body = created.json()
    assert body["name"] == "Streamline"
    assert body["role"] == "owner"
    assert body["id"].startswith("org_")
    listed = client.get("/api/v1/orgs/").json()["results"]
    assert [(o["id"], o["role"]) for o in listed] == [(body["id"], "owner")]


def test_api_keys_cannot_create_organizations_and_see_only_their_own(org_with_owner):
    organization, _ = org_with_owner
    _, key = make_api_key(organization, Role.OWNER)
    client = key_client(key)
    assert client.post("/api/v1/orgs/", {"name": "x"}, format="json").status_code == 403
    assert [o["id"] for o in client.get("/api/v1/orgs/").json()["results"]] == [
        organization.public_id
    ]


def test_rename_is_audited_with_before_and_after(org_with_owner, owner_client):
    organization, owner = org_with_owner
    response = owner_client.patch(org_url(organization), {"name": "New Name"}, format="json")
    assert response.json()["name"] == "New Name"
    event = owner_client.get(
        org_url(organization, "audit-events/?action=organization.updated")
    ).json()["results"][0]
    assert event["before"] == {"name": "Victim Corp"}
    assert event["after"] == {"name": "New Name"}
    assert event["actor"] == {"type": "user", "id": owner.email, "label": owner.email}
    assert event["target"] == {"type": "organization", "id": organization.public_id}


class TestInvitations:
    @pytest.fixture(autouse=True)
    def _run_on_commit(self, django_capture_on_commit_callbacks):
        # The e-mail task is queued when the invitation commits; the test's transaction never
        # does, so run the callbacks as each request ends.
        self.on_commit = django_capture_on_commit_callbacks

    def invite(self, client, organization, email="new@example.com", role="developer"):
        with self.on_commit(execute=True):
            return client.post(
                org_url(organization, "invitations/"), {"email": email, "role": role}, format="json"
            )

    def test_invite_accept_and_become_a_member(self, org_with_owner, owner_client):
        organization, _ = org_with_owner
        invited = self.invite(owner_client, organization, email="New@Example.com")
        assert invited.status_code == 201
        assert invited.json()["state"] == "pending"
        assert invited.json()["email"] == "new@example.com"
        assert mail.outbox[-1].to == ["new@example.com"]
        token = token_from_last_mail()

        newcomer = UserFactory(email="new@example.com")
        accepted = session_client(newcomer).post(
            "/api/v1/invitations/accept/", {"token": token}, format="json"
        )
        assert accepted.status_code == 201
        assert accepted.json()["role"] == "developer"
        assert accepted.json()["organization"] == organization.public_id
        newcomer_client = session_client(newcomer)
        assert newcomer_client.get(org_url(organization)).json()["role"] == "developer"
        again = newcomer_client.post("/api/v1/invitations/accept/", {"token": token}, format="json")
        assert again.status_code == 409
        assert audit_actions(owner_client, organization, "?action=invitation.accepted") == [
            "invitation.accepted"
        ]

    def test_only_the_invited_address_can_accept(self, org_with_owner, owner_client):
        organization, _ = org_with_owner
        self.invite(owner_client, organization)
        stranger = session_client(UserFactory(email="stranger@example.com"))
        response = stranger.post(
            "/api/v1/invitations/accept/", {"token": token_from_last_mail()}, format="json"
        )
        assert response.status_code == 404

    def test_decline_revoke_and_expiry(self, org_with_owner, owner_client):
        organization, _ = org_with_owner
        invitee = session_client(UserFactory(email="new@example.com"))

        self.invite(owner_client, organization)
        declined = invitee.post(
            "/api/v1/invitations/decline/", {"token": token_from_last_mail()}, format="json"
        )
        assert declined.status_code == 204

        revoked_id = self.invite(owner_client, organization).json()["id"]
        revoked_token = token_from_last_mail()
        assert (
            owner_client.delete(org_url(organization, f"invitations/{revoked_id}/")).status_code
            == 204
        )
        late = invitee.post("/api/v1/invitations/accept/", {"token": revoked_token}, format="json")
        assert late.status_code == 409
        assert "revoked" in late.json()["detail"]

        self.invite(owner_client, organization)
        expired_token = token_from_last_mail()
        with tenant_scope(organization):
            Invitation.objects.filter(state="pending").update(
                expires_at=timezone.now() - timedelta(minutes=1)
            )
        expired = invitee.post(
            "/api/v1/invitations/accept/", {"token": expired_token}, format="json"
        )
        assert expired.status_code == 409
        assert "expired" in expired.json()["detail"]
        # An expired invitation does not block a new one to the same address.
        assert self.invite(owner_client, organization).status_code == 201
        states = [
            i["state"]
            for i in owner_client.get(org_url(organization, "invitations/")).json()["results"]
        ]
        assert sorted(states) == ["declined", "expired", "pending", "revoked"]

    def test_duplicates_members_and_roles_above_your_own_are_refused(self, org_with_owner):
        organization, _ = org_with_owner
        admin = session_client(add_member(organization, Role.ADMIN).user)
        assert self.invite(admin, organization, role="owner").status_code == 403
        assert self.invite(admin, organization).status_code == 201
        assert self.invite(admin, organization).json()["code"] == "conflict"
        member = add_member(organization, Role.VIEWER)
        assert self.invite(admin, organization, email=member.user.email).status_code == 409


class TestMembers:
    def test_roles_change_within_what_the_changer_may_grant(self, org_with_owner, owner_client):
        organization, _ = org_with_owner
        admin = add_member(organization, Role.ADMIN)
        developer = add_member(organization, Role.DEVELOPER)
        admin_client = session_client(admin.user)
        url = org_url(organization, f"members/{developer.public_id}/")
        assert admin_client.patch(url, {"role": "viewer"}, format="json").json()["role"] == "viewer"
        assert admin_client.patch(url, {"role": "owner"}, format="json").status_code == 403
        owner_id = owner_client.get(org_url(organization, "membership/")).json()["id"]
        demote_owner = admin_client.patch(
            org_url(organization, f"members/{owner_id}/"), {"role": "viewer"}, format="json"
        )
        assert demote_owner.status_code == 403
        event = owner_client.get(
            org_url(organization, "audit-events/?action=member.role_changed")
        ).json()["results"][0]
        assert (event["before"], event["after"]["role"]) == ({"role": "developer"}, "viewer")

    def test_the_last_owner_can_be_neither_demoted_nor_removed(self, org_with_owner, owner_client):
        organization, _ = org_with_owner
        mine = owner_client.get(org_url(organization, "membership/")).json()["id"]
        url = org_url(organization, f"members/{mine}/")
        assert (
            owner_client.patch(url, {"role": "admin"}, format="json").json()["code"] == "last_owner"
        )
        assert owner_client.delete(url).json()["code"] == "last_owner"
        second = add_member(organization, Role.OWNER)
        assert owner_client.patch(url, {"role": "admin"}, format="json").status_code == 200
        second_client = session_client(second.user)
        assert (
            second_client.delete(org_url(organization, "membership/")).json()["code"]
            == "last_owner"
        )

    def test_anyone_may_leave_and_is_then_an_outsider(self, org_with_owner, owner_client):
        organization, _ = org_with_owner
        viewer = add_member(organization, Role.VIEWER)
        client = session_client(viewer.user)
        assert client.delete(org_url(organization, "membership/")).status_code == 204
        assert client.get(org_url(organization)).status_code == 404
        with tenant_scope(organization):
            assert not Membership.objects.filter(pk=viewer.pk).exists()
        assert audit_actions(owner_client, organization, "?action=member.left") == ["member.left"]


class TestApiKeys:
    def test_the_key_is_shown_once_works_and_stops_when_revoked(self, org_with_owner, owner_client):
        organization, _ = org_with_owner
        created = owner_client.post(
            org_url(organization, "api-keys/"), {"name": "ci", "role": "developer"}, format="json"
        ).json()
        key = created.pop("key")
        fetched = owner_client.get(org_url(organization, f"api-keys/{created['id']}/")).json()
        assert "key" not in fetched
        assert fetched["prefix"] == key.split("_")[1]

        client = key_client(key)
        assert client.get(org_url(organization, "members/")).status_code == 200
        assert client.get(org_url(organization, "audit-events/")).status_code == 403  # developer
        with tenant_scope(organization):
            assert ApiKey.objects.get(public_id=created["id"]).last_used_at is not None

        assert (
            owner_client.delete(org_url(organization, f"api-keys/{created['id']}/")).status_code
            == 204
        )
        assert client.get(org_url(organization, "members/")).status_code == 401
        listed = owner_client.get(org_url(organization, "api-keys/")).json()["results"]
        assert listed[0]["active"] is False
        assert listed[0]["revoked_at"] is not None

    def test_a_key_cannot_mint_a_stronger_key(self, org_with_owner):
        organization, _ = org_with_owner
        _, developer_key = make_api_key(organization, Role.DEVELOPER)
        client = key_client(developer_key)
        url = org_url(organization, "api-keys/")
        assert client.post(url, {"name": "x", "role": "admin"}, format="json").status_code == 403
        made = client.post(url, {"name": "x", "role": "viewer"}, format="json")
        assert made.status_code == 201

    def test_expiry_must_be_in_the_future_and_within_a_year(self, org_with_owner, owner_client):
        organization, _ = org_with_owner
        url = org_url(organization, "api-keys/")
        past = (timezone.now() - timedelta(days=1)).isoformat()
        far = (timezone.now() + timedelta(days=400)).isoformat()
        for when in (past, far):
            response = owner_client.post(
                url, {"name": "x", "role": "viewer", "expires_at": when}, format="json"
            )
            assert response.status_code == 400
            assert response.json()["field"] == "expires_at"

    def test_actions_by_a_key_are_attributed_to_the_key(self, org_with_owner, owner_client):
        organization, _ = org_with_owner
        api_key, key = make_api_key(organization, Role.ADMIN)
        key_client(key).patch(org_url(organization), {"name": "Automated"}, format="json")
        event = owner_client.get(
            org_url(organization, f"audit-events/?actor={api_key.public_id}")
        ).json()["results"][0]
        assert event["action"] == "organization.updated"
        assert event["actor"]["type"] == "api_key"
        assert event["actor"]["id"] == api_key.public_id


def test_audit_events_filter_by_actor_action_and_time(org_with_owner, owner_client):
    organization, _ = org_with_owner
    other = add_member(organization, Role.ADMIN)
    other_client = session_client(other.user)
    owner_client.patch(org_url(organization), {"name": "One"}, format="json")
    other_client.patch(org_url(organization), {"name": "Two"}, format="json")
    other_client.post(
        org_url(organization, "api-keys/"), {"name": "k", "role": "viewer"}, format="json"
    )

    by_other = audit_actions(owner_client, organization, f"?actor={other.user.email}")
    assert by_other == ["api_key.created", "organization.updated"]
    both = audit_actions(owner_client, organization, "?action=api_key.created,organization.created")
    assert both == ["api_key.created", "organization.created"]
    future = (timezone.now() + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert audit_actions(owner_client, organization, f"?since={future}") == []
    assert len(audit_actions(owner_client, organization, f"?until={future}")) == 5
    bad = owner_client.get(org_url(organization, "audit-events/?since=yesterday"))
    assert bad.status_code == 400
    assert bad.json()["code"] == "validation"
