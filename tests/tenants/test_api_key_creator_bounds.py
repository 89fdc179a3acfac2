"""An API key acts for the person who created it: at most with their current role, and only
while they are an active member. A key minted by a key acts for the person behind the minting
key, and cannot be given more than the minting key may do now."""

import pytest

from tenants.models import ApiKey
from tenants.roles import Role, lesser_role
from tenants.scoping import tenant_scope
from tests.factories import add_member, make_api_key
from tests.support.clients import key_client, session_client

pytestmark = pytest.mark.django_db


def org_url(organization, rest: str = "") -> str:
    return f"/api/v1/orgs/{organization.public_id}/{rest}"


def create_key(client, organization, role: str, name: str = "automation"):
    body = {"name": name, "role": role}
    return client.post(org_url(organization, "api-keys/"), body, format="json")


def change_role(owner_client, organization, membership, role: str) -> None:
    response = owner_client.patch(
        org_url(organization, f"members/{membership.public_id}/"), {"role": role}, format="json"
    )
    assert response.status_code == 200, response.content


def may_write(client, organization) -> int:
    """Status of a write a developer may make and a viewer may not (creating a viewer key)."""
    return create_key(client, organization, Role.VIEWER, name="probe").status_code


@pytest.fixture
def developer(org_with_owner):
    organization, _ = org_with_owner
    return add_member(organization, Role.DEVELOPER)


@pytest.fixture
def developer_key(org_with_owner, developer):
    """A developer key the developer created through the API, with their session."""
    organization, _ = org_with_owner
    created = create_key(session_client(developer.user), organization, Role.DEVELOPER)
    assert created.status_code == 201
    return created.json()["key"]


def test_a_demoted_creator_s_key_acts_with_the_creator_s_new_role(
    org_with_owner, owner_client, developer, developer_key
):
    organization, _ = org_with_owner
    client = key_client(developer_key)
    assert may_write(client, organization) == 201

    change_role(owner_client, organization, developer, Role.VIEWER)
    assert may_write(client, organization) == 403
    assert client.get(org_url(organization, "members/")).status_code == 200  # still reads
    listed = client.get("/api/v1/orgs/").json()["results"]
    assert [(o["id"], o["role"]) for o in listed] == [(organization.public_id, "viewer")]

    # Promoted again: the key gets back what it had, and no more than its own role.
    change_role(owner_client, organization, developer, Role.DEVELOPER)
    assert may_write(client, organization) == 201
    change_role(owner_client, organization, developer, Role.ADMIN)
    assert client.get(org_url(organization, "audit-events/")).status_code == 403
    assert create_key(client, organization, Role.ADMIN).status_code == 403


@pytest.mark.parametrize("how", ["removed", "left", "deactivated"])
def test_a_key_stops_working_when_its_creator_is_no_longer_a_member(
    org_with_owner, owner_client, developer, developer_key, how
):
    organization, _ = org_with_owner
    client = key_client(developer_key)
    assert client.get(org_url(organization, "members/")).status_code == 200
    if how == "removed":
        url = org_url(organization, f"members/{developer.public_id}/")
        assert owner_client.delete(url).status_code == 204
    elif how == "left":
        url = org_url(organization, "membership/")
        assert session_client(developer.user).delete(url).status_code == 204
    else:
        developer.user.is_active = False
        developer.user.save(update_fields=["is_active"])

    refused = client.get(org_url(organization, "members/"))
    assert refused.status_code == 401
    assert refused.json()["code"] == "authentication_failed"
    assert client.get("/api/v1/orgs/").status_code == 401


def test_a_removed_member_s_keys_are_revoked_and_stay_dead_if_they_return(
    org_with_owner, owner_client, developer, developer_key
):
    organization, _ = org_with_owner
    url = org_url(organization, f"members/{developer.public_id}/")
    assert owner_client.delete(url).status_code == 204
    listed = owner_client.get(org_url(organization, "api-keys/")).json()["results"]
    assert [(k["active"], k["revoked_at"] is not None) for k in listed] == [(False, True)]
    events = owner_client.get(org_url(organization, "audit-events/?action=api_key.revoked"))
    assert events.json()["results"][0]["after"]["reason"] == "creator_left"

    add_member(organization, Role.DEVELOPER, user=developer.user)  # invited back later
    assert key_client(developer_key).get(org_url(organization, "members/")).status_code == 401


def test_a_key_minted_by_a_key_acts_for_the_person_behind_it(
    org_with_owner, owner_client, developer, developer_key
):
    organization, _ = org_with_owner
    minting = key_client(developer_key)
    assert create_key(minting, organization, Role.ADMIN).status_code == 403
    minted = create_key(minting, organization, Role.DEVELOPER, name="minted")
    assert minted.status_code == 201
    assert minted.json()["created_by"] == developer.user.email
    with tenant_scope(organization):
        assert ApiKey.objects.get(public_id=minted.json()["id"]).created_by == developer.user
    client = key_client(minted.json()["key"])
    assert may_write(client, organization) == 201

    change_role(owner_client, organization, developer, Role.VIEWER)
    assert may_write(client, organization) == 403

    url = org_url(organization, f"members/{developer.public_id}/")
    assert owner_client.delete(url).status_code == 204
    assert client.get(org_url(organization, "members/")).status_code == 401


def test_a_key_mints_no_more_than_it_may_do_now(org_with_owner, owner_client):
    organization, _ = org_with_owner
    admin = add_member(organization, Role.ADMIN)
    _, admin_key = make_api_key(organization, Role.ADMIN, creator=admin.user)
    client = key_client(admin_key)
    assert create_key(client, organization, Role.ADMIN).status_code == 201

    change_role(owner_client, organization, admin, Role.DEVELOPER)
    refused = create_key(client, organization, Role.ADMIN)
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert create_key(client, organization, Role.DEVELOPER).status_code == 201


def test_a_key_whose_role_its_creator_no_longer_covers_acts_with_none(org_with_owner, owner_client):
    """An owner's billing key, once the owner is an admin: admin and billing share no role."""
    organization, _ = org_with_owner
    owner = add_member(organization, Role.OWNER)
    _, billing_key = make_api_key(organization, Role.BILLING, creator=owner.user)
    client = key_client(billing_key)
    assert client.get(org_url(organization)).status_code == 200

    change_role(owner_client, organization, owner, Role.ADMIN)
    refused = client.get(org_url(organization))
    assert refused.status_code == 403
    assert "outside what its creator may do now" in refused.json()["detail"]


def test_the_api_keys_page_tells_the_role_a_key_acts_with(org_with_owner, owner_client):
    """The web UI's key list says when a key acts below its own role, or with none."""
    from django.test import Client

    organization, owner_user = org_with_owner
    developer = add_member(organization, Role.DEVELOPER)
    other_owner = add_member(organization, Role.OWNER)
    make_api_key(organization, Role.DEVELOPER, creator=developer.user, name="demoted-key")
    make_api_key(organization, Role.BILLING, creator=other_owner.user, name="billing-key")
    make_api_key(organization, Role.VIEWER, creator=developer.user, name="viewer-key")
    browser = Client()
    browser.force_login(owner_user)
    page_url = f"/orgs/{organization.public_id}/api-keys/"

    def role_cell(name: str) -> str:
        page = browser.get(page_url).content.decode()
        row = page[page.index(f"<strong>{name}</strong>") :]
        return row[: row.index("</tr>")]

    assert "acts as" not in role_cell("demoted-key")
    change_role(owner_client, organization, developer, Role.VIEWER)
    change_role(owner_client, organization, other_owner, Role.ADMIN)
    assert "acts as viewer" in role_cell("demoted-key")
    assert "refused: its creator" in role_cell("billing-key")
    assert "acts as" not in role_cell("viewer-key")  # its own role, which its creator covers


@pytest.mark.parametrize(
    ("role", "other", "lesser"),
    [
        (Role.OWNER, Role.VIEWER, Role.VIEWER),
        (Role.DEVELOPER, Role.ADMIN, Role.DEVELOPER),
        (Role.ADMIN, Role.DEVELOPER, Role.DEVELOPER),
        (Role.BILLING, Role.OWNER, Role.BILLING),
        (Role.DEVELOPER, Role.BILLING, None),
        (Role.BILLING, Role.VIEWER, None),
    ],
)
def test_lesser_role(role, other, lesser):
    assert lesser_role(role, other) == lesser
    assert lesser_role(other, role) == lesser


def test_authenticating_a_key_reads_one_row(org_with_owner, django_assert_max_num_queries):
    """The creator's standing comes with the key, in the same query: the request path for keys
    stays as cheap as it was."""
    organization, _ = org_with_owner
    _, key = make_api_key(organization, Role.VIEWER)
    client = key_client(key)
    client.get(org_url(organization))  # the first use writes last_used_at
    with django_assert_max_num_queries(1):
        assert client.get(org_url(organization)).status_code == 200


def test_keys_minted_by_keys_before_the_rule_get_the_person_behind_them(org_with_owner):
    """The data migration: such keys recorded no creator; the audit trail names their minter."""
    from importlib import import_module

    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    from tenants import services
    from tenants.audit import Actor

    name = "0005_api_keys_minted_by_keys_record_their_person"
    migration = import_module(f"tenants.migrations.{name}")
    historical = MigrationLoader(connection).project_state(("tenants", name)).apps
    organization, _ = org_with_owner
    admin = add_member(organization, Role.ADMIN)
    with tenant_scope(organization):
        parent, _ = make_api_key(organization, Role.ADMIN, creator=admin.user)
        child, _ = services.api_key_create(
            organization=organization,
            name="child",
            role=Role.DEVELOPER,
            actor=Actor(api_key=parent),
            actor_role=Role.ADMIN,
        )
        grandchild, _ = services.api_key_create(
            organization=organization,
            name="grandchild",
            role=Role.VIEWER,
            actor=Actor(api_key=child),
            actor_role=Role.DEVELOPER,
        )
        by_person, _ = make_api_key(organization, Role.VIEWER)
        # As keys were made before: no creator on a key minted by a key; and one whose creator
        # was deleted, which nothing can recover.
        ApiKey.objects.filter(pk__in=[child.pk, grandchild.pk, by_person.pk]).update(
            created_by=None
        )

    migration.record_the_person_behind(historical, None)

    with tenant_scope(organization):
        creators = dict(ApiKey.objects.values_list("name", "created_by"))
    assert creators == {
        parent.name: admin.user.pk,
        "child": admin.user.pk,
        "grandchild": admin.user.pk,
        by_person.name: None,
    }
