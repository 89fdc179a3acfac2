"""Connecting and consumer groups in the console, on the simulated data plane: the snippets of
every language with the cluster's address and a username (the password only on the page that
shows it once), the client.properties download, and the consumer-group pages and API saying
that no Kafka runs here. The same against the real broker: test_consumer_groups_kafka.py."""

import pytest
from django.urls import reverse

from clusters import naming, reconciler, rendering, services
from clusters.models import ClusterState
from tenants.audit import Actor
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, make_cell, make_cluster, make_org
from tests.support.clients import session_client

pytestmark = pytest.mark.django_db

LANGUAGES = ["java", "python", "go", "node", "kcat"]


@pytest.fixture
def owner():
    return UserFactory()


@pytest.fixture
def ready_cluster(owner, django_capture_on_commit_callbacks):
    organization = make_org(owner=owner, name="Connectors")
    make_cell()
    with django_capture_on_commit_callbacks(execute=True):
        cluster, _ = make_cluster(organization)
    cluster.refresh_from_db()
    assert cluster.state == ClusterState.READY
    return cluster


def page(name: str, cluster, **kwargs) -> str:
    return reverse(
        f"clusters:{name}",
        kwargs={"org": cluster.organization.public_id, "cluster_id": cluster.public_id, **kwargs},
    )


def test_the_cluster_page_has_a_snippet_per_language_without_a_password(
    client, owner, ready_cluster
):
    client.force_login(owner)
    with tenant_scope(ready_cluster.organization):
        credential, password, _ = services.credential_create(
            cluster=ready_cluster, actor=Actor(user=owner), name="app"
        )
    body = client.get(page("detail", ready_cluster)).content.decode()
    for language in LANGUAGES:
        assert f'id="snippet-{language}"' in body
        assert f'data-copy="snippet-{language}"' in body
    assert body.count(ready_cluster.bootstrap_servers) >= len(LANGUAGES)
    assert credential.username in body
    assert password not in body
    assert "&lt;credential password&gt;" in body
    assert f"{ready_cluster.public_id}.my-topic" in body  # the serverless prefix
    assert "sluice/copy.js" in body


def test_the_credential_page_fills_the_password_into_every_snippet(client, owner, ready_cluster):
    client.force_login(owner)
    response = client.post(page("credential-create", ready_cluster), {"credential-name": "app"})
    body = response.content.decode()
    with tenant_scope(ready_cluster.organization):
        credential = ready_cluster.credentials.get(name="app")
    password = reconciler.secretbox.unseal(credential.password_encrypted)
    for language in LANGUAGES:
        section = body.split(f'id="snippet-{language}"', 1)[1].split("</pre>", 1)[0]
        assert password in section, language
        assert credential.username in section, language
    assert response["Cache-Control"].startswith("max-age=0")


def test_client_properties_download(client, owner, ready_cluster):
    client.force_login(owner)
    with tenant_scope(ready_cluster.organization):
        credential, _, _ = services.credential_create(
            cluster=ready_cluster, actor=Actor(user=owner), name="app"
        )
    response = client.get(page("client-properties", ready_cluster))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="client.properties"'
    assert response.content.decode() == (
        f"bootstrap.servers={ready_cluster.bootstrap_servers}\n"
        "security.protocol=SASL_SSL\n"
        "sasl.mechanism=SCRAM-SHA-512\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{credential.username}" password="<credential password>";\n'
    )


def test_consumer_groups_are_not_available_on_the_simulated_data_plane(
    client, owner, ready_cluster
):
    client.force_login(owner)
    body = client.get(page("consumer-groups", ready_cluster)).content.decode()
    assert "not available on the simulated data plane" in body
    api = session_client(owner)
    base = (
        f"/api/v1/orgs/{ready_cluster.organization.public_id}/clusters/"
        f"{ready_cluster.public_id}/consumer-groups/"
    )
    for response in (
        api.get(base),
        api.get(f"{base}readers/"),
        api.post(f"{base}readers/reset-offsets/", {"to": "earliest"}, format="json"),
    ):
        assert response.status_code == 409
        assert response.json()["code"] == "consumer_groups_unavailable"
    for path in (base, f"{base}readers/", f"{base}readers/reset-offsets/"):
        assert api.options(path).status_code == 200
    refused = api.post(f"{base}readers/reset-offsets/", {"to": "timestamp"}, format="json")
    assert refused.status_code == 400
    assert refused.json()["field"] == "timestamp"


def test_sluices_principals_are_rendered_with_their_narrow_acls(ready_cluster):
    with tenant_scope(ready_cluster.organization):
        spec = reconciler.build_spec(ready_cluster)
    users = {
        m["metadata"]["name"]: m["spec"] for m in rendering.render(spec) if m["kind"] == "KafkaUser"
    }
    prefix = {"name": f"{ready_cluster.public_id}.", "patternType": "prefix"}
    observer = users[naming.sluice_username(ready_cluster.public_id, "observer")]
    offsets = users[naming.sluice_username(ready_cluster.public_id, "offsets")]
    assert observer["authorization"]["acls"] == [
        {"type": "allow", "resource": {"type": "topic", **prefix}, "operations": ["Describe"]},
        {"type": "allow", "resource": {"type": "group", **prefix}, "operations": ["Describe"]},
    ]
    assert offsets["authorization"]["acls"] == [
        {
            "type": "allow",
            "resource": {"type": "topic", **prefix},
            "operations": ["Describe", "Read"],
        },
        {
            "type": "allow",
            "resource": {"type": "group", **prefix},
            "operations": ["Describe", "Read"],
        },
    ]
    assert "quotas" not in observer
    assert "quotas" not in offsets
    # Each cluster's passwords are its own, sealed.
    other, _ = make_cluster(ready_cluster.organization, name="other")
    assert reconciler.secretbox.unseal(other.observer_password_encrypted) != (
        reconciler.secretbox.unseal(ready_cluster.observer_password_encrypted)
    )
