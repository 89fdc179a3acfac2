"""No row of any table holds a secret in plaintext: every secret-bearing object is created (and
rotated) plainly and with an Idempotency-Key, replayed, and then every table is read and
searched. Responses that show a secret are never cached, first answer and replay alike; a
replay answers the object without its secret."""

import io
from secrets import token_urlsafe

import pytest
import yaml
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.test import Client

from clusters import cell_credentials
from clusters.models import Cell
from foundation import secretbox
from tests.factories import UserFactory, make_cell, make_org
from tests.support.clients import key_client, session_client
from tests.support.kubeenv import make_pki

pytestmark = pytest.mark.django_db(transaction=True)


def every_row_in_the_database() -> dict[str, list[str]]:
    """Every row of every table (every column), as text, by table."""
    tables = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - names from introspection
            tables[table] = [repr(row) for row in cursor.fetchall()]
    return tables


def post_twice(client, path: str, body: dict | None, key: str):
    """A POST with an Idempotency-Key, and its replay."""
    headers = {"Idempotency-Key": key}
    first = client.post(path, body or {}, format="json", headers=headers)
    replay = client.post(path, body or {}, format="json", headers=headers)
    assert first.status_code < 300, first.content
    assert (replay.status_code, replay["Idempotent-Replayed"]) == (first.status_code, "true")
    return first, replay


def assert_shown_once(first, replay, *, secret_fields: list[str]) -> list[str]:
    """The first answer shows the secrets, the replay the same object without them; both are
    no-store. Returns the secrets shown."""
    assert first["Cache-Control"] == "no-store"
    assert replay["Cache-Control"] == "no-store"
    assert replay["Secret-Withheld"] == ", ".join(secret_fields)
    assert "Secret-Withheld" not in first
    shown, withheld = first.json(), replay.json()
    secrets = []
    for path in secret_fields:
        *parents, name = path.split(".")
        first_node, replay_node = shown, withheld
        for parent in parents:
            first_node, replay_node = first_node[parent], replay_node[parent]
        assert first_node[name]
        secrets.append(first_node[name])
        assert replay_node[name] is None
        first_node[name] = None
    assert withheld == shown  # everything else as first answered
    return secrets


def invitation_token() -> str:
    link = next(line for line in mail.outbox[-1].body.splitlines() if "/invitations/" in line)
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert len(token) >= 40
    return token


def register_cell_credentials(tmp_path) -> list[str]:
    """A cell's token pasted into the admin in a kubeconfig, then replaced by register_cell
    with a token file; both work (sealed), neither may be stored plainly. Returns the tokens."""
    ca = make_pki(tmp_path).ca_cert
    tokens = [token_urlsafe(32), token_urlsafe(32)]
    kubeconfig = cell_credentials.from_token(
        server="https://kube.example:6443", ca_certificate=ca.read_text(), token=tokens[0]
    )
    operator = Client()
    operator.force_login(UserFactory(is_staff=True, is_superuser=True))
    cell = make_cell(slug="eu-west-1-creds")
    form = {field.name: getattr(cell, field.name) for field in Cell._meta.fields if field.editable}
    form |= {"kubeconfig": yaml.safe_dump(kubeconfig), "test_connection": ""}
    changed = operator.post(f"/admin/clusters/cell/{cell.pk}/change/", form)
    assert changed.status_code == 302
    cell.refresh_from_db()
    assert tokens[0] in secretbox.unseal(cell.credentials_sealed)

    (tmp_path / "token").write_text(tokens[1])
    call_command(
        "register_cell",
        *(cell.slug, "--server", "https://kube.example:6443", "--ca-file", str(ca)),
        *("--token-file", str(tmp_path / "token")),
        stdout=io.StringIO(),
    )
    cell.refresh_from_db()
    assert tokens[1] in secretbox.unseal(cell.credentials_sealed)
    return tokens


def test_no_secret_is_stored_or_replayed_anywhere(tmp_path):
    owner = UserFactory()
    organization = make_org(owner=owner)
    make_cell()
    client = session_client(owner)
    base = f"/api/v1/orgs/{organization.public_id}"
    secrets: list[str] = []

    # API keys ----------------------------------------------------------------------------
    plain = client.post(f"{base}/api-keys/", {"name": "ci", "role": "developer"}, format="json")
    assert (plain.status_code, plain["Cache-Control"]) == (201, "no-store")
    secrets.append(plain.json()["key"])
    first, replay = post_twice(
        client, f"{base}/api-keys/", {"name": "deploys", "role": "viewer"}, "key-1"
    )
    secrets += assert_shown_once(first, replay, secret_fields=["key"])
    # The replay's object is the key first made, which works; no second key was made.
    assert key_client(secrets[-1]).get(f"{base}/").status_code == 200
    assert len(client.get(f"{base}/api-keys/").json()["results"]) == 2

    # Invitation tokens (mailed, never in a response) ------------------------------------
    invited = client.post(
        f"{base}/invitations/", {"email": "new@example.com", "role": "viewer"}, format="json"
    )
    assert invited.status_code == 201
    secrets.append(invitation_token())
    first, replay = post_twice(
        client, f"{base}/invitations/", {"email": "other@example.com", "role": "viewer"}, "inv-1"
    )
    assert replay.json() == first.json()
    secrets.append(invitation_token())
    assert len(mail.outbox) == 2  # the replay mailed nothing

    # Credentials: created and rotated, on a cluster the simulated data plane holds -------
    created = client.post(
        f"{base}/clusters/",
        {"name": "events", "type": "serverless", "region": "eu-west-1"},
        format="json",
    )
    assert created.status_code == 202
    clusters = f"{base}/clusters/{created.json()['cluster']['id']}"
    plain = client.post(f"{clusters}/credentials/", {"name": "plain"}, format="json")
    assert (plain.status_code, plain["Cache-Control"]) == (202, "no-store")
    secrets.append(plain.json()["credential"]["password"])
    password_fields = ["credential.password", "credential.sasl_jaas_config"]
    first, replay = post_twice(client, f"{clusters}/credentials/", {"name": "idem"}, "cred-1")
    secrets += assert_shown_once(first, replay, secret_fields=password_fields)
    credential = f"{clusters}/credentials/{first.json()['credential']['id']}"

    rotated = client.post(f"{credential}/rotate/", format="json")
    assert (rotated.status_code, rotated["Cache-Control"]) == (202, "no-store")
    secrets.append(rotated.json()["credential"]["password"])
    first, replay = post_twice(client, f"{credential}/rotate/", None, "rotate-1")
    secrets += assert_shown_once(first, replay, secret_fields=password_fields)
    assert client.get(f"{clusters}/").json()["state"] == "ready"

    # A cell's credentials: pasted into the admin, and registered by the command ----------
    secrets += register_cell_credentials(tmp_path)

    # Every table, every column ------------------------------------------------------------
    tables = every_row_in_the_database()
    # What must be looked at is there: the search below cannot pass on empty tables.
    assert len(tables["tenants_idempotencyrecord"]) == 4
    assert any("'Secret'" in row for row in tables["clusters_simulatedobject"])
    audit = "\n".join(tables["tenants_auditevent"])
    assert "credential.created" in audit
    assert "credential.rotated" in audit
    assert "kubeconfig" in "\n".join(tables["django_admin_log"])  # the field named, only
    stored = "\n".join(row for rows in tables.values() for row in rows)
    assert len(secrets) == 12
    for secret in secrets:
        # A whole key contains a public prefix: its secret part is what must be absent.
        needle = secret.rsplit("_", 1)[1] if secret.startswith("slk_") else secret
        assert len(needle) >= 32
        assert needle not in stored

    # ...yet what they are for still works: digests for the lookups, sealed passwords for the
    # data plane.
    listed = client.get(f"{base}/api-keys/").json()["results"]
    assert all("key" not in listed_key for listed_key in listed)
    accepted = session_client(UserFactory(email="new@example.com")).post(
        "/api/v1/invitations/accept/", {"token": secrets[2]}, format="json"
    )
    assert accepted.status_code == 201
