"""Every form of the web UI ends in a redirect (post/redirect/get): the address bar after a
submission is a page's, so reloading it is a GET that answers 200 or a redirect, never a 405
and never a second submission. The walk finds every organization page that takes a POST, so a
new one is covered without being listed."""

import pytest
from django.test import Client
from django.urls import reverse

from clusters import services as cluster_services
from tenants import services
from tenants.audit import Actor
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, add_member, make_api_key, make_cluster, make_org
from tests.support.isolation import web_routes

pytestmark = pytest.mark.django_db

# The pages whose answer to a POST is a secret shown once (never cached, never kept): they are
# not redirected, and reloading their URL is a GET of the route's own confirmation or form page.
SHOWN_ONCE = {"clusters:credential-rotate", "tenants:api-keys"}


def _samples(owner) -> dict[str, str]:
    """One object of a fresh organization for each URL parameter the web UI's routes take."""
    organization = make_org(owner=owner, name="Walk")
    member = add_member(organization, Role.DEVELOPER)
    api_key, _ = make_api_key(organization, Role.DEVELOPER)
    cluster, _ = make_cluster(organization, name="walked")
    actor = Actor(user=owner)
    with tenant_scope(organization):
        invitation, _ = services.invitation_create(
            organization=organization,
            email="invitee@walk.example",
            role=Role.VIEWER,
            actor=actor,
            actor_role=Role.OWNER,
            accept_url_base="http://testserver/invitations/",
        )
        topic, _ = cluster_services.topic_create(
            cluster=cluster, actor=actor, name="walked-topic", partitions=1
        )
        credential, _, _ = cluster_services.credential_create(
            cluster=cluster, actor=actor, name="walked-app"
        )
    return {
        "org": organization.public_id,
        "cluster_id": cluster.public_id,
        "topic_name": topic.name,
        "credential_id": credential.public_id,
        "member_id": member.public_id,
        "invitation_id": invitation.public_id,
        "key_id": api_key.public_id,
        "group": "walked-readers",
    }


def _posting_routes():
    return [
        route
        for route in web_routes()
        if "POST" in getattr(route.callback, "organization_scopes", {})
    ]


def test_the_walk_finds_the_forms():
    names = {route.name for route in _posting_routes()}
    assert {"clusters:list", "clusters:resize", "tenants:leave", "billing:caps"} <= names


@pytest.mark.parametrize("route_name", sorted(route.name for route in _posting_routes()))
def test_a_submission_redirects_and_its_result_reloads(route_name, client: Client):
    owner = UserFactory(email="owner@walk.example")
    client.force_login(owner)
    samples = _samples(owner)
    route = next(route for route in _posting_routes() if route.name == route_name)
    kwargs = {name: samples[name] for name in route.kwargs}
    url = reverse(route.name, kwargs=kwargs)

    # An empty form: refused by every page but those that need no input.
    answer = client.post(url, {})
    if route.name in SHOWN_ONCE and answer.status_code == 200:
        assert "no-store" in answer["Cache-Control"]
        result_url = url
    else:
        assert answer.status_code in (302, 303), f"POST {url}: {answer.status_code}"
        result_url = answer["Location"]

    if result_url.startswith("/"):  # not an outside page (Stripe's portal)
        reloaded = client.get(result_url)
        assert reloaded.status_code in (200, 302), f"reload {result_url}: {reloaded.status_code}"
    # The submit URL itself, should it stay in the address bar, is a page too.
    again = client.get(url, follow=True)
    assert again.status_code in (200, 404), f"GET {url}: {again.status_code}"
