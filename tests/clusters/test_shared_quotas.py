"""A cluster on a shared Kafka stays within its tier however many credentials it has: the data
plane it is reconciled to gives each credential a share of the cluster's limits (re-rendered
for all of them when one comes or goes), and the API bounds what a partition may keep
(``retention.bytes``). The throughput on the real broker: tests/test_shared_quotas_kafka.py."""

import pytest

from clusters import naming, reconciler, services
from clusters.models import GB, MB, Cell, SimulatedObject, Topic
from tenants.audit import Actor
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, make_cell, make_cluster, make_org
from tests.support.clients import session_client

pytestmark = pytest.mark.django_db

ACTOR = Actor(system="tests")


@pytest.fixture
def serverless(db):
    owner = UserFactory()
    organization = make_org(owner=owner, name="Neighbourly")
    make_cell()
    cluster, _ = make_cluster(organization)
    return cluster, session_client(owner)


def topics_url(cluster) -> str:
    return f"/api/v1/orgs/{cluster.organization.public_id}/clusters/{cluster.public_id}/topics/"


def partition_ceiling(cluster) -> int:
    tier = cluster.tier
    return tier.max_storage_gb * GB // tier.max_partitions


# Client quotas: the data plane the reconciler leaves behind ------------------------------------


def applied_quotas(cluster) -> dict[str, dict]:
    """Each credential's KafkaUser's quotas as the (simulated) data plane holds them after a
    reconcile (Sluice's own principals of the cluster have none)."""
    assert reconciler.reconcile(cluster.pk) == reconciler.Outcome.CONVERGED
    users = SimulatedObject.objects.filter(cluster_public_id=cluster.public_id, kind="KafkaUser")
    sluices = {naming.sluice_username(cluster.public_id, role) for role in ("observer", "offsets")}
    assert {item.name for item in users} >= sluices
    return {
        item.name: item.manifest["spec"]["quotas"] for item in users if item.name not in sluices
    }


def add_credential(cluster, name: str, **rates):
    with tenant_scope(cluster.organization):
        credential, _, _ = services.credential_create(
            cluster=cluster, actor=ACTOR, name=name, **rates
        )
    cluster.refresh_from_db()
    return credential


def test_every_credential_is_re_rendered_with_its_share_when_one_comes_or_goes(serverless):
    cluster, _ = serverless
    Cell.objects.filter(pk=cluster.cell_id).update(shared_kafka_brokers=2)
    ingress = cluster.tier.ingress_mbps * MB
    egress = cluster.tier.egress_mbps * MB

    first = add_credential(cluster, "app")
    assert applied_quotas(cluster) == {
        first.username: {
            "producerByteRate": ingress // 2,  # Kafka counts per broker: two brokers
            "consumerByteRate": egress // 2,
            "requestPercentage": 25,
            "controllerMutationRate": 10.0,
        }
    }

    second = add_credential(cluster, "batch")
    quotas = applied_quotas(cluster)
    assert set(quotas) == {first.username, second.username}
    for quota in quotas.values():
        assert quota == {
            "producerByteRate": ingress // 4,
            "consumerByteRate": egress // 4,
            "requestPercentage": 12,
            "controllerMutationRate": 5.0,
        }
    # Flat out on both brokers, the two credentials together stay within the cluster's limits.
    assert sum(q["producerByteRate"] for q in quotas.values()) * 2 <= ingress

    with tenant_scope(cluster.organization):
        services.credential_delete(credential=second, actor=ACTOR)
    cluster.refresh_from_db()
    assert applied_quotas(cluster)[first.username]["producerByteRate"] == ingress // 2


def test_an_own_quota_is_capped_to_the_credentials_share(serverless):
    cluster, _ = serverless
    Cell.objects.filter(pk=cluster.cell_id).update(shared_kafka_brokers=1)
    ingress = cluster.tier.ingress_mbps * MB
    # Each asks for the whole cluster's ingress (the most the API allows one credential).
    greedy = [add_credential(cluster, f"greedy-{n}", producer_byte_rate=ingress) for n in range(4)]
    modest = add_credential(cluster, "modest", producer_byte_rate=1000)
    quotas = applied_quotas(cluster)
    for credential in greedy:
        assert quotas[credential.username]["producerByteRate"] == ingress // 5
    assert quotas[modest.username]["producerByteRate"] == 1000
    assert sum(q["producerByteRate"] for q in quotas.values()) <= ingress


# retention.bytes: the storage ceiling of a partition ------------------------------------------


def test_retention_bytes_defaults_to_the_ceiling_and_is_accepted_up_to_it(serverless):
    cluster, client = serverless
    ceiling = partition_ceiling(cluster)
    assert ceiling == 5000 * GB // 2048  # the seeded Serverless tier
    unset = client.post(topics_url(cluster), {"name": "plain", "partitions": 3}, format="json")
    assert unset.status_code == 202, unset.json()
    assert unset.json()["topic"]["configs"]["retention.bytes"] == str(ceiling)
    at_most = client.post(
        topics_url(cluster),
        {"name": "full", "partitions": 1, "configs": {"retention.bytes": str(ceiling)}},
        format="json",
    )
    assert at_most.status_code == 202, at_most.json()
    # Configs given again without it: the ceiling again, never unlimited.
    patched = client.patch(
        f"{topics_url(cluster)}full/", {"configs": {"compression.type": "zstd"}}, format="json"
    )
    assert patched.status_code == 202, patched.json()
    assert patched.json()["topic"]["configs"] == {
        "compression.type": "zstd",
        "retention.bytes": str(ceiling),
    }


@pytest.mark.parametrize("too_much", ["-1", "ceiling+1", str(2**63 - 1)])
def test_retention_bytes_above_the_ceiling_or_unlimited_is_refused(serverless, too_much):
    cluster, client = serverless
    ceiling = partition_ceiling(cluster)
    value = str(ceiling + 1) if too_much == "ceiling+1" else too_much
    created = client.post(
        topics_url(cluster),
        {"name": "hoard", "partitions": 1, "configs": {"retention.bytes": value}},
        format="json",
    )
    assert created.status_code == 400
    assert created["Content-Type"] == "application/problem+json"
    problem = created.json()
    assert (problem["code"], problem["field"]) == ("validation", "configs")
    assert f"retention.bytes is 1 to {ceiling} per partition" in problem["detail"]
    with tenant_scope(cluster.organization):
        assert not Topic.objects.exists()

    kept = client.post(topics_url(cluster), {"name": "kept", "partitions": 1}, format="json")
    assert kept.status_code == 202
    patched = client.patch(
        f"{topics_url(cluster)}kept/", {"configs": {"retention.bytes": value}}, format="json"
    )
    assert patched.status_code == 400
    assert patched.json()["code"] == "validation"
    with tenant_scope(cluster.organization):
        assert Topic.objects.get(name="kept").configs == {"retention.bytes": str(ceiling)}


def test_a_dedicated_cluster_keeps_what_its_own_volumes_hold(db):
    owner = UserFactory()
    organization = make_org(owner=owner, name="Own Iron")
    make_cell()
    cluster, _ = make_cluster(organization, tier_slug="dedicated")
    client = session_client(owner)
    unlimited = client.post(
        topics_url(cluster),
        {"name": "archive", "partitions": 1, "configs": {"retention.bytes": "-1"}},
        format="json",
    )
    assert unlimited.status_code == 202, unlimited.json()
    assert unlimited.json()["topic"]["configs"] == {"retention.bytes": "-1"}
