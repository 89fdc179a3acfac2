"""The secrets key ring (SLUICE_SECRETS_KEYS): keys rotate without stopping the reconciler,
re-sealing lets an old key go, and a lost key fails only applies, clearly, never a deletion.
The reconciles run against the Kubernetes test environment, where the data plane's own Secret
shows which password it holds."""

import base64
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from kubernetes import client

from clusters import cell_credentials, rendering, services
from clusters.models import Cell, Credential, Operation
from foundation import secretbox
from tenants.scoping import tenant_scope
from tests.clusters.test_reconciler_kube import (
    ACTOR,
    converge,
    labelled,
    new_cluster,
    tenant_objects,
)
from tests.factories import make_cluster, make_org
from tests.support.cells import kube_credentials

pytestmark = pytest.mark.django_db

KEY_A, KEY_B, KEY_C, KEY_CELL = (Fernet.generate_key().decode() for _ in range(4))


def data_plane_password(kube, cell, credential: Credential) -> str:
    """The password in the Secret Sluice wrote for the credential on the cell's shared Kafka."""
    name = f"{rendering.resource_name(credential.public_id)}-scram"
    secret = client.CoreV1Api(kube.api_client()).read_namespaced_secret(
        name, cell.shared_kafka_namespace
    )
    return base64.b64decode(secret.data["password"]).decode()


def sealed(credential: Credential) -> bytes:
    return bytes(Credential.unscoped_all_tenants.get(pk=credential.pk).password_encrypted)


def seal_cell_credentials(kube, cell, settings, *keys: str) -> None:
    """The cell's credentials (clusters.cell_credentials) sealed again, under ``keys``: the
    fixture sealed them under the ring of its time."""
    settings.SLUICE_SECRETS_KEYS = list(keys)
    Cell.objects.filter(pk=cell.pk).update(
        **cell_credentials.sealed_columns(kube_credentials(kube))
    )


def reseal(**options) -> str:
    out = StringIO()
    call_command("reseal_secrets", stdout=out, **options)
    return out.getvalue()


@pytest.mark.kube
def test_keys_rotate_reseal_and_retire_while_the_reconciler_converges(kube, dataplane, settings):
    seal_cell_credentials(kube, dataplane, settings, KEY_A)
    cluster, _ = new_cluster("serverless")
    with tenant_scope(cluster.organization):
        first, first_password, _ = services.credential_create(
            cluster=cluster, actor=ACTOR, name="first"
        )
    cluster = converge(cluster)
    assert cluster.state == "ready"
    assert data_plane_password(kube, dataplane, first) == first_password

    # A new key first, the old one kept: what A sealed still opens, new values get B.
    settings.SLUICE_SECRETS_KEYS = [KEY_B, KEY_A]
    with tenant_scope(cluster.organization):
        services.topic_create(cluster=cluster, actor=ACTOR, name="orders", partitions=1)
        second, second_password, _ = services.credential_create(
            cluster=cluster, actor=ACTOR, name="second"
        )
    cluster = converge(cluster)
    assert cluster.state == "ready"
    assert data_plane_password(kube, dataplane, first) == first_password
    assert data_plane_password(kube, dataplane, second) == second_password
    Fernet(KEY_B).decrypt(sealed(second))

    # Re-seal: everything under B (the first credential's password, those of the cluster's
    # two principals of Sluice's and the cell's credentials); running it again changes nothing.
    assert "Re-sealed 4; 1 already under the newest key; 0 unreadable." in reseal()
    before = sealed(first), sealed(second)
    assert "Re-sealed 0; 5 already under the newest key; 0 unreadable." in reseal()
    assert (sealed(first), sealed(second)) == before
    for credential in (first, second):
        Fernet(KEY_B).decrypt(sealed(credential))

    # A dropped: everything still works.
    settings.SLUICE_SECRETS_KEYS = [KEY_B]
    with tenant_scope(cluster.organization):
        services.topic_create(cluster=cluster, actor=ACTOR, name="payments", partitions=1)
    cluster = converge(cluster)
    assert (cluster.state, cluster.observed_generation) == ("ready", cluster.generation)
    assert data_plane_password(kube, dataplane, first) == first_password
    assert data_plane_password(kube, dataplane, second) == second_password


@pytest.mark.kube
def test_a_lost_key_fails_the_apply_by_name_and_never_blocks_deletion(kube, dataplane, settings):
    # The cell's credentials are under a key of their own, kept in every ring below: what is
    # lost here is the keys of passwords, not the way to the data plane.
    seal_cell_credentials(kube, dataplane, settings, KEY_A, KEY_CELL)
    cluster, _ = new_cluster("serverless")
    with tenant_scope(cluster.organization):
        credential, password, _ = services.credential_create(
            cluster=cluster, actor=ACTOR, name="orders service"
        )
    cluster = converge(cluster)
    assert cluster.state == "ready"
    objects = labelled(kube, cluster.public_id)
    assert sorted(tenant_objects(kube, cluster.public_id)) == [
        ("KafkaUser", credential.username),
        ("Secret", f"{rendering.resource_name(credential.public_id)}-scram"),
    ]

    # A is gone entirely: an apply cannot write the credential's Secret and fails, naming it,
    # without touching (or pruning) what the data plane holds.
    settings.SLUICE_SECRETS_KEYS = [KEY_C, KEY_CELL]
    with tenant_scope(cluster.organization):
        _, operation = services.topic_create(
            cluster=cluster, actor=ACTOR, name="orders", partitions=1
        )
    cluster = converge(cluster)
    assert (cluster.state, cluster.failure_reason) == ("failed", "CredentialUnreadable")
    assert credential.public_id in cluster.failure_message
    assert "SLUICE_SECRETS_KEYS" in cluster.failure_message
    assert cluster.conditions[0]["object"] == credential.public_id
    # Sluice's own principals got new passwords, sealed under the ring's key: not a failure.
    assert secretbox.unseal(cluster.observer_password_encrypted)
    with tenant_scope(cluster.organization):
        failed = Operation.objects.get(pk=operation.pk)
    assert (failed.state, failed.error_code) == ("failed", "CredentialUnreadable")
    assert labelled(kube, cluster.public_id) == objects
    assert data_plane_password(kube, dataplane, credential) == password

    # Rotating the credential seals a new password under the ring's key: the cluster recovers.
    with tenant_scope(cluster.organization):
        credential, new_password, _ = services.credential_rotate(credential=credential, actor=ACTOR)
    cluster = converge(cluster)
    assert cluster.state == "ready"
    assert data_plane_password(kube, dataplane, credential) == new_password

    # That key is lost too: deletion needs no password and still removes everything.
    settings.SLUICE_SECRETS_KEYS = [KEY_B, KEY_CELL]
    with tenant_scope(cluster.organization):
        services.cluster_delete(cluster=cluster, actor=ACTOR)
    cluster = converge(cluster, timeout=60)
    assert cluster.state == "deleted"
    assert labelled(kube, cluster.public_id) == []


def test_reseal_works_in_batches_and_names_what_no_key_opens(settings):
    settings.SLUICE_SECRETS_KEYS = [KEY_A]
    organization = make_org(name="Sealed")
    cluster, _ = make_cluster(organization)
    with tenant_scope(organization):
        created = [
            services.credential_create(cluster=cluster, actor=ACTOR, name=f"c{i}") for i in range(5)
        ]
    passwords = {credential.pk: password for credential, password, _ in created}

    settings.SLUICE_SECRETS_KEYS = [KEY_B, KEY_A]
    # The five credentials' passwords and those of the cluster's two principals of Sluice's.
    assert "Re-sealed 7; 0 already" in reseal(batch_size=2)
    settings.SLUICE_SECRETS_KEYS = [KEY_B]
    for pk, password in passwords.items():
        assert secretbox.unseal(Credential.unscoped_all_tenants.get(pk=pk).password_encrypted) == (
            password
        )
    assert "Re-sealed 0; 7 already" in reseal(batch_size=2)
    cluster.refresh_from_db()
    assert secretbox.unseal(cluster.observer_password_encrypted)  # opens under the new key

    lost_pk = created[0][0].pk
    Credential.unscoped_all_tenants.filter(pk=lost_pk).update(
        password_encrypted=Fernet(KEY_C).encrypt(b"sealed under a key nobody has")
    )
    named = rf"clusters\.Credential\.password_encrypted pk={lost_pk}\b"
    with pytest.raises(CommandError, match=named):
        reseal()
    with pytest.raises(secretbox.Unreadable):
        secretbox.unseal(Credential.unscoped_all_tenants.get(pk=lost_pk).password_encrypted)
