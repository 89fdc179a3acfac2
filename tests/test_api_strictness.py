"""What the server refuses or answers, as the OpenAPI description states it (the conformance
test finds these by generation; here each rule is named once)."""

import pytest

from tenants.models import ApiKey
from tenants.roles import Role
from tenants.scoping import current_tenant_or_none
from tests.factories import UserFactory, make_api_key, make_cluster, make_org
from tests.support.clients import key_client, session_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(db):
    organization = make_org(owner=UserFactory(), name="Strict")
    cluster, _ = make_cluster(organization)
    _key, secret = make_api_key(organization, role=Role.OWNER)
    return organization, cluster, key_client(secret)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("topics/", {"name": "orders", "partitions": "2"}, "partitions"),
        ("topics/", {"name": "orders", "partitions": True}, "partitions"),
        ("topics/", {"name": "orders", "partitions": 2.0}, "partitions"),
        ("topics/", {"name": 0, "partitions": 2}, "name"),
        ("credentials/", {"name": "app", "request_percentage": "50"}, "request_percentage"),
    ],
)
def test_a_json_string_is_not_a_number_nor_a_number_a_string(owner, path, body, field):
    organization, cluster, client = owner
    base = f"/api/v1/orgs/{organization.public_id}/clusters/{cluster.public_id}/"
    response = client.post(base + path, body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_an_organization_named_by_a_number_is_refused(owner):
    organization, _cluster, client = owner
    response = client.patch(f"/api/v1/orgs/{organization.public_id}/", {"name": 0}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"name": ["Must be a JSON string."]}


def test_a_config_value_error_is_nested_under_its_key(owner):
    organization, cluster, client = owner
    response = client.post(
        f"/api/v1/orgs/{organization.public_id}/clusters/{cluster.public_id}/topics/",
        {"name": "orders", "partitions": 1, "configs": {"segment.ms": 600000}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {"configs": {"segment.ms": ["Must be a JSON string."]}}


@pytest.mark.parametrize("method", ["put", "trace"])
def test_a_method_the_path_lacks_is_405_for_members_and_404_for_outsiders(owner, method):
    organization, _cluster, client = owner
    path = f"/api/v1/orgs/{organization.public_id}/members/"
    response = client.generic(method.upper(), path)
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert "GET" in response["Allow"]
    outsider = session_client(UserFactory())
    assert outsider.generic(method.upper(), path).status_code == 404


def test_format_in_the_query_is_an_ordinary_parameter(owner):
    organization, _cluster, client = owner
    response = client.get(f"/api/v1/orgs/{organization.public_id}/members/?format=xml")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize("limit", ["0", "-1", "1.5", "null", str(2**63), "201"])
def test_a_limit_outside_1_to_200_is_refused(owner, limit):
    organization, _cluster, client = owner
    response = client.get(f"/api/v1/orgs/{organization.public_id}/members/?limit={limit}")
    assert response.status_code == 400
    assert "limit" in response.json()["errors"]


@pytest.mark.parametrize(
    "value", ["", "2026-11-01", "2026-11-01T00:00:00", " 2026-11-01T00:00:00Z"]
)
def test_audit_time_filters_take_rfc3339_date_times_only(owner, value):
    organization, _cluster, client = owner
    response = client.get(f"/api/v1/orgs/{organization.public_id}/audit-events/", {"since": value})
    assert response.status_code == 400
    assert "since" in response.json()["errors"]


def test_idempotency_keys_are_visible_ascii(owner):
    organization, _cluster, client = owner
    minting_key = ApiKey.unscoped_all_tenants.get(organization=organization)
    path = f"/api/v1/orgs/{organization.public_id}/api-keys/"
    body = {"name": "ci", "role": "viewer"}
    refused = client.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY="two words")
    assert refused.status_code == 400
    assert refused.json()["field"] == "Idempotency-Key"
    accepted = client.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY="ci-run-42")
    assert accepted.status_code == 201
    # A key made by a key names the person behind the minting key: it acts for them.
    assert accepted.json()["created_by"] == minting_key.created_by.email


def test_the_organizations_list_is_an_object_with_results(owner):
    organization, _cluster, client = owner
    body = client.get("/api/v1/orgs/").json()
    assert [o["id"] for o in body["results"]] == [organization.public_id]


def test_an_unknown_region_is_refused_and_a_region_without_a_cell_is_unavailable(owner):
    organization, _cluster, client = owner
    path = f"/api/v1/orgs/{organization.public_id}/clusters/"
    unknown = client.post(
        path, {"name": "a", "type": "serverless", "region": "mars-1"}, format="json"
    )
    assert unknown.status_code == 400
    empty = client.post(
        path, {"name": "a", "type": "serverless", "region": "ap-south-1"}, format="json"
    )
    assert empty.status_code == 503
    assert empty.json()["code"] == "capacity_unavailable"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("", {"name": "\x1e \u3000"}, "name"),  # whitespace to Python, which trims it
        ("", {"name": " " + "x" * 99 + " "}, "name"),  # longer than 100 as sent
        ("clusters/{cluster}/topics/", {"name": "orders\n", "partitions": 1}, "name"),  # not $
    ],
)
def test_names_are_refused_as_the_description_says(owner, path, body, field):
    organization, cluster, client = owner
    url = f"/api/v1/orgs/{organization.public_id}/" + path.format(cluster=cluster.public_id)
    send = client.patch if path == "" else client.post
    response = send(url, body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_names_are_trimmed(owner):
    organization, _cluster, client = owner
    response = client.patch(
        f"/api/v1/orgs/{organization.public_id}/", {"name": " Acme\n"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Acme"


def test_options_leaves_no_organization_in_scope_after_the_request(owner):
    # OPTIONS checks each method's permissions again: the scope is entered once and left.
    organization, cluster, client = owner
    for path in ("clusters/", f"clusters/{cluster.public_id}/topics/"):
        response = client.options(f"/api/v1/orgs/{organization.public_id}/{path}")
        assert response.status_code == 200
        assert current_tenant_or_none() is None
