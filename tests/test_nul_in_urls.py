"""A NUL character anywhere in a URL is a 4xx, never a 500, on every page of the web UI and
every API route (PostgreSQL refuses to compare text holding one): a 400 on pages, a problem on
the API (its query parameters are tried in tests/test_bad_input.py). The walk reads the URLconf,
so a page added tomorrow is tried tomorrow."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tenants.models import Membership, Role
from tests.support import abuse

pytestmark = pytest.mark.django_db

NUL = "%00"


def _routes(resolver=None, prefix: str = "") -> list[str]:
    routes = []
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            routes += _routes(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern) and "<" in str(entry.pattern):
            routes.append(prefix + str(entry.pattern))
    return routes


def _fill(route: str, values: dict[str, str], poisoned: str) -> str:
    """The route with every parameter filled from the world's ids, and ``poisoned`` carrying a
    NUL in the middle of its real value."""
    import re

    def value(match: re.Match) -> str:
        name = match.group("name")
        real = values.get(name, "x")
        return real[:2] + NUL + real[2:] if name == poisoned else real

    return "/" + re.sub(r"<(?:\w+:)?(?P<name>\w+)>", value, route.lstrip("^").rstrip("$"))


ROUTES = sorted({route for route in _routes() if "(?P" not in route})


@pytest.fixture
def world() -> abuse.World:
    return abuse.build_world()


def _owner(world: abuse.World):
    membership = Membership.unscoped_all_tenants.filter(
        organization=world.organization, role=Role.OWNER
    ).first()
    return membership.user


def _url_values(world: abuse.World) -> dict[str, str]:
    values = dict(world.url_values)
    values.setdefault("cluster_id", values.get("cluster", "x"))
    values.setdefault("topic_name", "orders")
    return values


@pytest.mark.parametrize("route", ROUTES)
def test_a_nul_in_any_path_parameter_is_refused(route, world, client):
    client.force_login(_owner(world))
    values = _url_values(world)
    names = [part.split(">")[0].split(":")[-1] for part in route.split("<")[1:]]
    assert names, route
    for name in names:
        for method in ("get", "post"):
            response = getattr(client, method)(_fill(route, values, name))
            assert response.status_code in (400, 404), (method, route, name, response.status_code)
            if route.startswith("api/"):
                assert response["Content-Type"] == "application/problem+json"


def test_a_nul_in_a_pages_query_string_is_refused(world, client):
    client.force_login(_owner(world))
    org = world.organization.public_id
    for path in ("/", "/orgs/", f"/orgs/{org}/audit/", "/accounts/login/", "/admin/"):
        assert client.get(f"{path}?q=a{NUL}b").status_code == 400, path
        assert client.get(f"{path}?a{NUL}=b").status_code == 400, path
