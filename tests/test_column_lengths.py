"""Whatever the API's validation accepts, the database can hold.

On PostgreSQL a string longer than its column is an error, not a truncation, so a validation
rule looser than the column is a server error waiting for a long enough value. For every text
field of every request body the OpenAPI description declares, the longest value the server
accepts is found (by bisection, each try rolled back) and must have been stored, not refused by
the database.
"""

from __future__ import annotations

import pytest
from django.test import override_settings

from tenants.models import IdempotencyRecord, User
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, make_org
from tests.support import abuse
from tests.support.clients import session_client

pytestmark = pytest.mark.django_db

LONGEST_TRIED = 100_000  # for a text field that declares no maxLength


@pytest.fixture(autouse=True)
def _no_rate_limits():
    with override_settings(
        SLUICE_RATE_LIMIT_ORG_PER_MINUTE=10**6, SLUICE_RATE_LIMIT_CALLER_PER_MINUTE=10**6
    ):
        yield


def domain_of_length(length: int) -> str:
    """A host name of exactly ``length`` characters: labels of at most 63, then ``.com``."""
    labels: list[str] = []
    remaining = length - len(".com")
    while remaining > 0:
        dot = 1 if labels else 0
        take = min(63, remaining - dot)
        if remaining - dot - take == 1:  # leave room for a dot and a letter, not a lone dot
            take -= 1
        labels.append("b" * take)
        remaining -= take + dot
    return ".".join(labels) + ".com"


def text_of_length(schema: dict, length: int) -> str:
    if schema.get("format") == "email":
        local = "a" * min(64, max(1, length - 10))
        return f"{local}@{domain_of_length(length - len(local) - 1)}"
    return "a" * length


def test_domain_of_length_is_exact():
    for length in (10, 64, 66, 127, 128, 200, 253, 300):
        assert len(domain_of_length(length)) == length


OPERATIONS = [
    op
    for op in abuse.operations()
    if op.body_schema is not None and op.key not in abuse.BASES_REFUSED
]


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.key)
def test_the_longest_accepted_text_is_stored(operation):
    world = abuse.build_world()
    path = abuse.concrete_path(operation.template, world)
    base = abuse.BASE_BODIES[operation.key]
    failures, longest = [], {}
    for name, schema in operation.body_schema.get("properties", {}).items():
        schema = abuse.resolve_schema(schema)
        if schema.get("type") != "string" or "enum" in schema or schema.get("readOnly"):
            continue
        if schema.get("format") not in (None, "email"):
            continue

        def answer(length: int, name=name, schema=schema) -> abuse.Outcome:
            body = {**base, name: text_of_length(schema, length)}
            return abuse.call_and_roll_back(world.client, operation.method, path, body=body)

        # Bisect for the longest length validation lets through (low: let through, or 0;
        # high: refused). A server error counts as let through: the database refused what
        # validation accepted.
        def let_through(length: int) -> bool:
            status = answer(length).status
            return status < 400 or status >= 500

        low, high = 0, schema.get("maxLength", LONGEST_TRIED)
        if let_through(high):
            low = high
        while high - low > 1:
            middle = (low + high) // 2
            if let_through(middle):
                low = middle
            else:
                high = middle
        longest[name] = low
        if low:
            outcome = answer(low)
            if not 200 <= outcome.status < 300:
                failures.append(f"{name}: {low} characters accepted, answered {outcome.status}")
    assert failures == [], "\n".join(failures)
    free_text = {"name", "email"} & set(operation.body_schema.get("properties", {}))
    assert all(longest.get(name) for name in free_text), longest  # the probe was not vacuous


def test_an_idempotent_request_from_the_longest_email_address():
    """The idempotency record keeps the caller, a user's e-mail address: the longest one the
    user model holds must fit too."""
    longest = User._meta.get_field("email").max_length
    local = "a" * 64
    user = UserFactory(email=f"{local}@{domain_of_length(longest - len(local) - 1)}")
    assert len(user.email) == longest
    organization = make_org(owner=user)
    client = session_client(user)
    response = client.post(
        f"/api/v1/orgs/{organization.public_id}/api-keys/",
        {"name": "automation", "role": "viewer"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="first-try",
    )
    assert response.status_code == 201, response.content
    with tenant_scope(organization):
        assert IdempotencyRecord.objects.count() == 1
