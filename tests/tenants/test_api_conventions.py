"""API conventions, against the real PostgreSQL and Redis: problem+json errors, Idempotency-Key,
rate limits, request ids, cursor pagination."""

import json
import threading
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from tenants.models import ApiKey, IdempotencyRecord
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, add_member, make_api_key, make_org
from tests.support.clients import key_client, session_client
from tests.support.processes import clean_environment, database_url, run_python

PROBLEM = "application/problem+json"


def keys_url(organization) -> str:
    return f"/api/v1/orgs/{organization.public_id}/api-keys/"


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"].endswith(f"/problems/{code}")
    assert body["title"]
    return body


# problem+json ---------------------------------------------------------------------------------


@pytest.mark.django_db
class TestProblems:
    def test_validation_names_the_fields(self, org_with_owner, owner_client):
        organization, _ = org_with_owner
        response = owner_client.post(keys_url(organization), {"role": "emperor"}, format="json")
        body = assert_problem(response, 400, "validation")
        assert set(body["errors"]) == {"name", "role"}

    def test_malformed_json(self, org_with_owner, owner_client):
        organization, _ = org_with_owner
        response = owner_client.post(
            keys_url(organization), "{not json", content_type="application/json"
        )
        assert_problem(response, 400, "malformed_request")

    def test_not_authenticated_is_401_with_a_challenge(self, org_with_owner):
        organization, _ = org_with_owner
        response = APIClient().get(keys_url(organization))
        assert_problem(response, 401, "not_authenticated")
        assert response["WWW-Authenticate"].startswith("Bearer")

    def test_bad_revoked_and_expired_keys(self, org_with_owner):
        organization, _ = org_with_owner
        url = f"/api/v1/orgs/{organization.public_id}/"
        assert_problem(key_client("slk_nope").get(url), 401, "authentication_failed")
        api_key, key = make_api_key(organization)
        wrong = key[:-4] + "abcd"
        assert_problem(key_client(wrong).get(url), 401, "authentication_failed")
        with tenant_scope(organization):
            ApiKey.objects.filter(pk=api_key.pk).update(expires_at=timezone.now())
        body = assert_problem(key_client(key).get(url), 401, "authentication_failed")
        assert "expired" in body["detail"]
        with tenant_scope(organization):
            ApiKey.objects.filter(pk=api_key.pk).update(expires_at=None, revoked_at=timezone.now())
        body = assert_problem(key_client(key).get(url), 401, "authentication_failed")
        assert "revoked" in body["detail"]

    def test_permission_denied_names_the_missing_scope(self, org_with_owner):
        organization, _ = org_with_owner
        viewer = add_member(organization, Role.VIEWER).user
        body = assert_problem(
            session_client(viewer).get(keys_url(organization)), 403, "permission_denied"
        )
        assert "apikeys:read" in body["detail"]

    def test_last_owner_cannot_leave(self, org_with_owner, owner_client):
        organization, _ = org_with_owner
        response = owner_client.delete(f"/api/v1/orgs/{organization.public_id}/membership/")
        assert_problem(response, 409, "last_owner")

    def test_method_not_allowed(self, org_with_owner, owner_client):
        organization, _ = org_with_owner
        response = owner_client.put(keys_url(organization), {}, format="json")
        assert_problem(response, 405, "method_not_allowed")


# Idempotency-Key ------------------------------------------------------------------------------


@pytest.mark.django_db
class TestIdempotency:
    def test_a_retry_replays_the_first_response_and_creates_nothing(self, org_with_owner):
        organization, _ = org_with_owner
        _, key = make_api_key(organization, Role.ADMIN)
        client = key_client(key)
        body = {"name": "deployer", "role": "developer"}
        first = client.post(keys_url(organization), body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
        again = client.post(keys_url(organization), body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
        assert first.status_code == again.status_code == 201
        # The very same key, less its secret, which is shown once (test_secrets_at_rest.py).
        assert first.json()["key"].startswith("slk_")
        assert again.json() == {**first.json(), "key": None}
        assert again["Idempotent-Replayed"] == "true"
        assert "Idempotent-Replayed" not in first
        assert again["Content-Type"] == first["Content-Type"]
        with tenant_scope(organization):
            assert ApiKey.objects.filter(name="deployer").count() == 1

    def test_the_same_key_with_another_body_is_422(self, org_with_owner, owner_client):
        organization, _ = org_with_owner
        url = keys_url(organization)
        owner_client.post(
            url, {"name": "a", "role": "viewer"}, format="json", HTTP_IDEMPOTENCY_KEY="k"
        )
        response = owner_client.post(
            url, {"name": "b", "role": "viewer"}, format="json", HTTP_IDEMPOTENCY_KEY="k"
        )
        assert_problem(response, 422, "idempotency_key_reused")
        with tenant_scope(organization):
            assert not ApiKey.objects.filter(name="b").exists()

    def test_the_same_key_from_another_caller_is_422(self, org_with_owner, owner_client):
        organization, _ = org_with_owner
        other = session_client(add_member(organization, Role.ADMIN).user)
        body = {"name": "a", "role": "viewer"}
        url = keys_url(organization)
        owner_client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="shared")
        response = other.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="shared")
        assert_problem(response, 422, "idempotency_key_reused")

    def test_keys_are_per_organization(self, org_with_owner, owner_client):
        organization, owner = org_with_owner
        second = make_org(owner=owner, name="Second")
        body = {"name": "a", "role": "viewer"}
        one = owner_client.post(
            keys_url(organization), body, format="json", HTTP_IDEMPOTENCY_KEY="x"
        )
        two = owner_client.post(keys_url(second), body, format="json", HTTP_IDEMPOTENCY_KEY="x")
        assert one.status_code == two.status_code == 201
        assert one.json()["id"] != two.json()["id"]

    def test_a_failed_request_is_replayed_too(self, org_with_owner, owner_client):
        organization, _ = org_with_owner
        body = {"name": "a", "role": "emperor"}
        url = keys_url(organization)
        first = owner_client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="bad")
        again = owner_client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="bad")
        assert first.status_code == again.status_code == 400
        assert again["Idempotent-Replayed"] == "true"

    def test_records_expire_after_24_hours(self, org_with_owner, owner_client):
        organization, _ = org_with_owner
        url = keys_url(organization)
        body = {"name": "a", "role": "viewer"}
        first = owner_client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="old")
        with tenant_scope(organization):
            IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))
        again = owner_client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="old")
        assert again.status_code == 201
        assert again.json()["id"] != first.json()["id"]
        assert "Idempotent-Replayed" not in again

    def test_an_unfinished_first_request_makes_retries_wait(self, org_with_owner, owner_client):
        organization, owner = org_with_owner
        url = keys_url(organization)
        body = {"name": "a", "role": "viewer"}
        from tenants import idempotency

        with tenant_scope(organization):
            idempotency.begin(
                organization=organization,
                key="busy",
                principal=str(owner),
                request_fingerprint=idempotency.fingerprint(method="POST", path=url, data=body),
            )
        response = owner_client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="busy")
        assert_problem(response, 409, "idempotency_in_progress")

    def test_a_key_longer_than_255_is_refused(self, org_with_owner, owner_client):
        organization, _ = org_with_owner
        response = owner_client.post(
            keys_url(organization),
            {"name": "a", "role": "viewer"},
            format="json",
            HTTP_IDEMPOTENCY_KEY="k" * 256,
        )
        assert_problem(response, 400, "validation")


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_create_exactly_one_object():
    owner = UserFactory()
    organization = make_org(owner=owner)
    _, key = make_api_key(organization, Role.ADMIN)
    body = {"name": "racer", "role": "viewer"}
    results: list = []
    start = threading.Barrier(8)

    def attempt() -> None:
        client = key_client(key)
        start.wait(timeout=10)
        try:
            response = client.post(
                keys_url(organization), body, format="json", HTTP_IDEMPOTENCY_KEY="race"
            )
            results.append((response.status_code, response.content))
        finally:
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    statuses = sorted(status for status, _ in results)
    assert len(results) == 8
    assert set(statuses) <= {201, 409}
    assert 201 in statuses
    created = {json.loads(content)["id"] for status, content in results if status == 201}
    assert len(created) == 1  # every success is the same object
    with tenant_scope(organization):
        assert ApiKey.objects.filter(name="racer").count() == 1


# Rate limits ----------------------------------------------------------------------------------


@pytest.mark.django_db
class TestRateLimits:
    def test_a_caller_over_its_limit_gets_429_with_retry_after(self, org_with_owner, settings):
        settings.SLUICE_RATE_LIMIT_CALLER_PER_MINUTE = 5
        organization, _ = org_with_owner
        api_key, key = make_api_key(organization)
        client = key_client(key)
        url = f"/api/v1/orgs/{organization.public_id}/"
        responses = [client.get(url) for _ in range(6)]
        assert [r.status_code for r in responses] == [200] * 5 + [429]
        assert [r["RateLimit-Remaining"] for r in responses[:5]] == ["4", "3", "2", "1", "0"]
        body = assert_problem(responses[5], 429, "rate_limited")
        assert 1 <= int(responses[5]["Retry-After"]) <= 60
        assert body["retry_after"] == int(responses[5]["Retry-After"])
        # The counter lives in Redis, where every web process shares it.
        store = redis.Redis.from_url(settings.REDIS_URL)
        assert store.keys(f"sluice:rl:key:{api_key.public_id}:*")
        # Another caller of the same organization is not held back by this one.
        _, other_key = make_api_key(organization)
        assert key_client(other_key).get(url).status_code == 200

    def test_the_organization_limit_spans_all_its_callers(self, org_with_owner, settings):
        settings.SLUICE_RATE_LIMIT_ORG_PER_MINUTE = 6
        settings.SLUICE_RATE_LIMIT_CALLER_PER_MINUTE = 100
        organization, owner = org_with_owner
        url = f"/api/v1/orgs/{organization.public_id}/"
        clients = [key_client(make_api_key(organization)[1]) for _ in range(2)]
        clients.append(session_client(owner))
        statuses = [clients[i % 3].get(url).status_code for i in range(7)]
        assert statuses == [200] * 6 + [429]
        other = make_org(name="Unaffected")
        assert (
            key_client(make_api_key(other)[1]).get(f"/api/v1/orgs/{other.public_id}/").status_code
            == 200
        )


# Request ids ----------------------------------------------------------------------------------


@pytest.mark.django_db
class TestRequestIds:
    def test_every_response_has_one_and_audit_events_record_it(self, org_with_owner, owner_client):
        organization, _ = org_with_owner
        assert owner_client.get("/healthz")["X-Request-ID"].startswith("req_")
        response = owner_client.post(
            keys_url(organization),
            {"name": "traced", "role": "viewer"},
            format="json",
            HTTP_X_REQUEST_ID="client-trace-42",
        )
        assert response["X-Request-ID"] == "client-trace-42"
        events = owner_client.get(
            f"/api/v1/orgs/{organization.public_id}/audit-events/?action=api_key.created"
        ).json()["results"]
        assert [e["request_id"] for e in events] == ["client-trace-42"]

    def test_an_unusable_request_id_is_replaced(self, client):
        response = client.get("/healthz", HTTP_X_REQUEST_ID="not ok; drop table")
        assert response["X-Request-ID"].startswith("req_")


@pytest.mark.django_db
def test_log_lines_carry_the_request_id():
    code = (
        "import django; django.setup()\n"
        "from django.test import Client\n"
        "from django.test.utils import setup_test_environment; setup_test_environment()\n"
        "Client().get('/api/v1/no-such-thing/', HTTP_X_REQUEST_ID='trace-in-logs')\n"
    )
    env = clean_environment(
        DJANGO_SETTINGS_MODULE="controlplane.settings.test",
        DATABASE_URL=database_url(connection.settings_dict),
        REDIS_URL=settings.REDIS_URL,
    )
    result = run_python(code, env=env)
    assert result.returncode == 0, result.stderr
    assert (
        "WARNING [trace-in-logs] django.request Not Found: /api/v1/no-such-thing/" in result.stderr
    )


# Cursor pagination ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_cursor_pagination_walks_every_row_once(org_with_owner, owner_client):
    organization, _ = org_with_owner
    made = {make_api_key(organization)[0].public_id for _ in range(7)}
    seen: list[str] = []
    url = keys_url(organization) + "?limit=3"
    pages = 0
    while url:
        page = owner_client.get(url).json()
        seen.extend(item["id"] for item in page["results"])
        url = page["next"]
        pages += 1
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7
    assert set(seen) == made
    bad = owner_client.get(keys_url(organization) + "?cursor=garbage")
    assert_problem(bad, 400, "validation")


@pytest.mark.django_db
def test_a_list_follows_its_views_ordering(org_with_owner, owner_client):
    """Members are listed oldest first (their view's ordering), not newest first."""
    organization, owner = org_with_owner
    joined = [add_member(organization, Role.VIEWER).user.email for _ in range(3)]
    page = owner_client.get(f"/api/v1/orgs/{organization.public_id}/members/?limit=10").json()
    assert [member["user"]["email"] for member in page["results"]] == [owner.email, *joined]
