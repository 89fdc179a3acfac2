"""The database never holds an API key or an invitation token: read every table and look."""

import pytest
from django.core import mail
from django.db import connection

from tests.factories import UserFactory, make_org
from tests.support.clients import session_client

pytestmark = pytest.mark.django_db(transaction=True)


def every_text_in_the_database() -> str:
    """Every row of every table, as text."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - names from introspection
            chunks.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(chunks)


def test_api_keys_and_invitation_tokens_are_stored_only_as_digests():
    owner = UserFactory()
    organization = make_org(owner=owner)
    client = session_client(owner)
    base = f"/api/v1/orgs/{organization.public_id}"

    created = client.post(f"{base}/api-keys/", {"name": "ci", "role": "developer"}, format="json")
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("slk_")
    secret_part = key.split("_")[2]

    invited = client.post(
        f"{base}/invitations/", {"email": "new@example.com", "role": "viewer"}, format="json"
    )
    assert invited.status_code == 201
    link = next(line for line in mail.outbox[-1].body.splitlines() if "/invitations/" in line)
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert len(token) >= 40

    stored = every_text_in_the_database()
    assert key not in stored
    assert secret_part not in stored
    assert token not in stored
    # ...yet both work: the digests are what the lookups use.
    listed = client.get(f"{base}/api-keys/").json()["results"]
    assert listed[0]["prefix"] == key.split("_")[1]
    assert "key" not in listed[0]
    from tests.support.clients import key_client

    assert key_client(key).get(f"{base}/").status_code == 200
    invitee = UserFactory(email="new@example.com")
    accepted = session_client(invitee).post(
        "/api/v1/invitations/accept/", {"token": token}, format="json"
    )
    assert accepted.status_code == 201
