"""What a reconcile asks of the API server, against the real test API server and the Strimzi
emulator: a run reads the status of what it applied from the apply answers (no GET of an object
the answer shows reported on), and the look that follows a run still in the works only reads
the status back, writing nothing, while the run after that applies again (so an object deleted
meanwhile is put back)."""

import time
from collections import Counter

import pytest
from kubernetes import client

from clusters import naming, reconciler
from clusters.drivers import driver_for
from clusters.models import Cluster
from clusters.reconciler import Outcome
from tests.clusters.test_reconciler_kube import converge, new_cluster
from tests.support.strimzi_emulator import GROUP, VERSION

pytestmark = [pytest.mark.kube, pytest.mark.django_db]


@pytest.fixture
def requests_sent(dataplane, monkeypatch) -> Counter:
    """(method, kind) of every request Sluice's client of the cell sends, counted."""
    api = driver_for(dataplane).api  # the client every driver of the cell shares
    sent: Counter = Counter()
    send = api.rest_client.request

    def counting(method, url, *args, **kwargs):
        path = url.split("?", 1)[0].rstrip("/").split("/")
        # …/<kind plural>/<name> for one object, …/<kind plural> for a collection.
        kind = path[-2] if len(path) > 1 and path[-2].endswith("s") else path[-1]
        sent[(method, kind)] += 1
        return send(method, url, *args, **kwargs)

    monkeypatch.setattr(api.rest_client, "request", counting)
    return sent


def fresh(cluster: Cluster) -> Cluster:
    return Cluster.unscoped_all_tenants.get(pk=cluster.pk)


def test_a_run_reads_the_status_it_applied_from_the_apply_answers(dataplane, requests_sent):
    cluster = converge(new_cluster("serverless")[0])
    assert cluster.state == "ready"
    requests_sent.clear()

    assert reconciler.reconcile(cluster.pk) == Outcome.CONVERGED

    # Its two KafkaUsers and their Secrets applied; the users' status was in the answers, so
    # the only read is the cell's shared Kafka, which the run does not apply.
    assert requests_sent == Counter(
        {("PATCH", "secrets"): 2, ("PATCH", "kafkausers"): 2, ("GET", "kafkas"): 1}
    )


def test_the_look_after_a_pending_run_writes_nothing_and_the_next_run_applies_again(
    kube, dataplane, strimzi_emulator, requests_sent
):
    strimzi_emulator.set_mode("never")  # the operator does not get to the cluster's users
    cluster, _ = new_cluster("serverless")
    applied: list[int | None] = []

    assert reconciler.reconcile(cluster.pk, if_pending=applied.append) == Outcome.PENDING
    assert applied == [1]  # this run applied generation 1 in full

    # Behind Sluice's back, one of the users goes.
    user = naming.sluice_username(cluster.public_id, "observer")
    client.CustomObjectsApi(kube.api_client()).delete_namespaced_custom_object(
        GROUP, VERSION, dataplane.shared_kafka_namespace, "kafkausers", user
    )
    requests_sent.clear()
    assert reconciler.reconcile(cluster.pk, if_pending=applied.append, applied=1) == Outcome.PENDING
    assert applied == [1, None]  # it only looked: the next run applies
    assert {method for method, _ in requests_sent} == {"GET"}
    assert fresh(cluster).state == "provisioning"

    requests_sent.clear()
    assert reconciler.reconcile(cluster.pk, if_pending=applied.append) == Outcome.PENDING
    assert applied == [1, None, 1]
    assert requests_sent[("PATCH", "kafkausers")] == 2  # the deleted user is back
    objects = client.CustomObjectsApi(kube.api_client())
    assert objects.get_namespaced_custom_object(
        GROUP, VERSION, dataplane.shared_kafka_namespace, "kafkausers", user
    )

    # The operator gets to it: the next look finds the cluster ready, still writing nothing.
    strimzi_emulator.set_mode("ready")
    requests_sent.clear()
    cluster = converge_by_looking(cluster)
    assert cluster.state == "ready"
    assert {method for method, _ in requests_sent} == {"GET"}


def converge_by_looking(cluster: Cluster, attempts: int = 100) -> Cluster:
    """Looks (runs told generation 1 was applied) until the cluster converges."""
    for _ in range(attempts):
        if reconciler.reconcile(cluster.pk, applied=1) == Outcome.CONVERGED:
            return fresh(cluster)
        time.sleep(0.1)
    raise AssertionError(f"{cluster.public_id} never converged: {fresh(cluster).conditions}")


@pytest.fixture
def watch_requests(dataplane, monkeypatch) -> Counter:
    """The kinds Sluice's client watches (GETs with watch=true), counted."""
    api = driver_for(dataplane).api
    sent: Counter = Counter()
    send = api.rest_client.request

    def counting(method, url, *args, **kwargs):
        if "watch=True" in url or "watch=true" in url:
            sent[url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]] += 1
        return send(method, url, *args, **kwargs)

    monkeypatch.setattr(api.rest_client, "request", counting)
    return sent


def test_a_new_cluster_is_ready_at_the_end_of_its_first_run(
    dataplane, strimzi_emulator, watch_requests, settings
):
    assert converge(new_cluster("serverless")[0]).state == "ready"  # the cell's Kafka is Ready
    # The operators take a moment after the apply: the run watches for their reports instead
    # of ending pending and coming back later.
    strimzi_emulator.delay = 0.3
    watch_requests.clear()
    cluster, _ = new_cluster("serverless")
    started = time.monotonic()
    assert reconciler.reconcile(cluster.pk) == Outcome.CONVERGED
    # Ended by the reports, not by the wait's bound (SLUICE_RECONCILE_STATUS_WAIT_SECONDS).
    assert 0.3 <= time.monotonic() - started < settings.SLUICE_RECONCILE_STATUS_WAIT_SECONDS
    assert fresh(cluster).state == "ready"
    assert watch_requests == Counter({"kafkausers": 1})  # one watch for both of its users


def test_a_run_waits_for_reports_no_longer_than_the_setting(dataplane, strimzi_emulator, settings):
    settings.SLUICE_RECONCILE_STATUS_WAIT_SECONDS = 0.5
    strimzi_emulator.set_mode("never")
    cluster, _ = new_cluster("serverless")
    started = time.monotonic()
    assert reconciler.reconcile(cluster.pk) == Outcome.PENDING
    waited = time.monotonic() - started
    assert 0.5 <= waited < 3.0, waited
    assert fresh(cluster).state == "provisioning"
