"""How reconciles are queued and fenced, on the simulated data plane (its state in the real
PostgreSQL), with real Celery workers on a real Redis: one queued run per cluster however often
it is asked for, a run that outlived its lease writes nothing, and a broker that is down when a
change commits delays the work without losing it or the answer."""

import math
import re
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from clusters import lifecycle, reconciler, services
from clusters.drivers import driver_for
from clusters.models import Cluster, Credential, Operation, SimulatedObject
from clusters.reconciler import LeaseLost, Outcome
from clusters.tasks import PENDING_FIRST_LOOK, reconcile_cluster, reconcile_fleet
from controlplane.celery import app
from tenants.audit import Actor
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, make_cell, make_cluster, make_org
from tests.support.clients import session_client
from tests.support.services import RedisServer, stop_process, wait_for

ACTOR = Actor(system="tests")
RECEIVED = re.compile(r"Task clusters\.tasks\.reconcile_cluster\[[0-9a-f-]+\] received")


def fresh(cluster: Cluster) -> Cluster:
    return Cluster.unscoped_all_tenants.get(pk=cluster.pk)


def kafka_names(cluster: Cluster) -> set[str]:
    return {
        o.manifest["spec"]["topicName"]
        for o in SimulatedObject.objects.filter(cluster_public_id=cluster.public_id)
        if o.kind == "KafkaTopic"
    }


# Coalescing -----------------------------------------------------------------------------------


def fleet_tick() -> None:
    try:
        reconcile_fleet()
    finally:
        connection.close()  # this thread's own connection


@pytest.mark.django_db(transaction=True)
@pytest.mark.celery_worker
def test_a_cluster_held_pending_has_one_reconcile_chain_however_often_the_fleet_ticks(
    start_celery_worker,
):
    # The worker's simulated data plane never turns this cluster Ready within the test.
    worker = start_celery_worker(SLUICE_SIMULATED_DEDICATED_READY_SECONDS="3600")
    organization = make_org(owner=UserFactory(), name="Held")
    started = time.monotonic()
    cluster, _ = make_cluster(organization, tier_slug="dedicated")  # queued on commit
    try:
        wait_for(lambda: fresh(cluster).reconcile_attempts >= 1, timeout=30, what="a first run")
    except TimeoutError:
        raise AssertionError(worker.log()[-6000:]) from None
    # Ticks of the fleet resync, three at a time (beat and a second beat, say), twenty rounds.
    for _ in range(20):
        ticks = [threading.Thread(target=fleet_tick) for _ in range(3)]
        for tick in ticks:
            tick.start()
        for tick in ticks:
            tick.join(timeout=30)
        time.sleep(0.5)
    time.sleep(2)
    elapsed = time.monotonic() - started
    runs = fresh(cluster).reconcile_attempts
    # One chain backs off from PENDING_FIRST_LOOK (jitter down to 0.8 of it), doubling: in
    # `elapsed` seconds it runs at most 1 + log2(elapsed / first + 1) times; one more for a run
    # in flight.
    first = 0.8 * PENDING_FIRST_LOOK
    one_chain = 2 + math.log2(elapsed / first + 1)
    assert 2 <= runs <= one_chain, (runs, elapsed, worker.log()[-4000:])
    received = len(RECEIVED.findall(worker.log()))
    assert received <= runs + 2, (received, runs)
    row = fresh(cluster)
    assert row.state == "provisioning"
    assert row.reconcile_ticket  # its next run is queued, once


@pytest.mark.django_db(transaction=True)
def test_a_change_during_a_run_gets_one_more_run_after_it(
    django_capture_on_commit_callbacks,
):
    organization = make_org(owner=UserFactory(), name="Busy")
    make_cell()
    with django_capture_on_commit_callbacks(execute=True):
        cluster, _ = make_cluster(organization)
    assert fresh(cluster).state == "ready"
    running = reconciler._take_lease(cluster.pk, "")  # a run is in progress
    with tenant_scope(organization), django_capture_on_commit_callbacks(execute=True):
        # The change queues a run (tasks run inline here); it finds the lease held.
        services.topic_create(cluster=cluster, actor=ACTOR, name="late", partitions=1)
    row = fresh(cluster)
    assert (row.reconcile_wanted, row.reconcile_ticket) == (True, "")
    assert row.observed_generation < row.generation
    # Its holder, ending, learns that one more run is wanted; a second change meanwhile is
    # folded into that one flag, not queued twice.
    assert reconciler._release_lease(running) is True
    assert fresh(cluster).reconcile_wanted is False
    assert lifecycle.request_reconcile(cluster.pk) is True  # what reconcile() does then
    row = fresh(cluster)
    assert row.state == "ready"
    assert row.observed_generation == row.generation
    assert "late" in {name.split(".", 1)[1] for name in kafka_names(cluster)}


@pytest.mark.django_db(transaction=True)
def test_a_run_that_learns_of_changes_made_while_it_worked_queues_exactly_one_more(
    django_capture_on_commit_callbacks, monkeypatch
):
    """Through reconcile() itself: two changes land while a run works (their runs find the
    lease held); the run, ending, queues one more, which applies both."""
    organization = make_org(owner=UserFactory(), name="Busy too")
    make_cell()
    with django_capture_on_commit_callbacks(execute=True):
        cluster, _ = make_cluster(organization)
    converge = reconciler._converge
    runs = []

    def converge_while_changes_land(cluster_row, spec, lease, **kwargs):
        outcome = converge(cluster_row, spec, lease, **kwargs)
        if runs.append(spec.generation) or len(runs) > 1:
            return outcome  # the run queued after this one
        with tenant_scope(organization), django_capture_on_commit_callbacks(execute=True):
            for name in ("late-1", "late-2"):
                services.topic_create(cluster=cluster, actor=ACTOR, name=name, partitions=1)
        return outcome

    monkeypatch.setattr(reconciler, "_converge", converge_while_changes_land)
    queued = []
    send = lifecycle.reserve_reconcile
    monkeypatch.setattr(
        lifecycle, "reserve_reconcile", lambda *a, **k: queued.append(a) or send(*a, **k)
    )
    assert reconciler.reconcile(cluster.pk) == Outcome.CONVERGED
    monkeypatch.setattr(reconciler, "_converge", converge)
    # The two changes' own runs found the lease held; the one after the first run, not.
    assert len(queued) == 3, queued
    assert len(runs) == 2, runs
    assert runs[1] == runs[0] + 2, runs  # the second run saw both changes
    row = fresh(cluster)
    assert row.reconcile_wanted is False
    assert {"late-1", "late-2"} <= {name.split(".", 1)[1] for name in kafka_names(cluster)}


@pytest.mark.django_db
def test_requests_for_a_queued_cluster_are_coalesced_and_a_stale_ticket_runs_nothing():
    organization = make_org(owner=UserFactory(), name="Queued")
    cluster, _ = make_cluster(organization)  # not committed: nothing queued yet
    first = lifecycle.reserve_reconcile(cluster.pk, countdown=30)
    assert first is not None
    assert lifecycle.reserve_reconcile(cluster.pk) is None  # coalesced into the queued run
    assert reconciler.clusters_to_reconcile().count(cluster.pk) == 0
    assert reconciler.reconcile(cluster.pk, ticket="someone-elses") == Outcome.SUPERSEDED
    assert fresh(cluster).last_reconciled_at is None
    assert reconciler.reconcile(cluster.pk, ticket=first) == Outcome.CONVERGED
    row = fresh(cluster)
    assert (row.reconcile_ticket, row.reconcile_due_at, row.lease_holder) == ("", None, "")
    assert reconciler.clusters_to_reconcile().count(cluster.pk) == 1


@pytest.mark.django_db
def test_a_run_queued_by_primary_key_before_runs_took_public_ids_still_runs():
    organization = make_org(owner=UserFactory(), name="Queued before")
    cluster, _ = make_cluster(organization)  # not committed: nothing queued yet
    ticket = lifecycle.reserve_reconcile(cluster.pk)
    run = reconcile_cluster.apply(args=(cluster.pk,), kwargs={"ticket": ticket})
    assert run.get() == Outcome.CONVERGED
    assert fresh(cluster).state == "ready"
    gone = reconcile_cluster.apply(args=(cluster.pk + 1000,), kwargs={"ticket": ""})
    assert gone.get() == Outcome.GONE


# Fencing --------------------------------------------------------------------------------------


def expire(lease) -> None:
    Cluster.unscoped_all_tenants.filter(pk=lease.cluster_pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


@pytest.mark.django_db(transaction=True)
def test_a_run_that_outlived_its_lease_neither_prunes_nor_writes(
    django_capture_on_commit_callbacks,
):
    organization = make_org(owner=UserFactory(), name="Fenced")
    make_cell()
    with django_capture_on_commit_callbacks(execute=True):
        cluster, _ = make_cluster(organization)
    # Run A starts (its lease taken first, so the topic's own run finds it busy) and reads the
    # desired state of its time: "orders" only, a generation it has not observed yet.
    stale = reconciler._take_lease(cluster.pk, "")
    with tenant_scope(organization), django_capture_on_commit_callbacks(execute=True):
        services.topic_create(cluster=cluster, actor=ACTOR, name="orders", partitions=1)
        stale_cluster = fresh(cluster)
        stale_spec = reconciler.build_spec(stale_cluster)
    assert stale_cluster.observed_generation < stale_spec.generation  # A would prune
    # A outlives its lease; meanwhile a topic is added and run B applies both.
    expire(stale)
    with tenant_scope(organization), django_capture_on_commit_callbacks(execute=True):
        _, payments = services.topic_create(
            cluster=cluster, actor=ACTOR, name="payments", partitions=1
        )
    after_b = fresh(cluster)
    assert after_b.lease_token == stale.token + 1
    assert after_b.observed_generation == after_b.generation
    assert f"{cluster.public_id}.payments" in kafka_names(cluster)
    with tenant_scope(organization):
        assert Operation.objects.get(pk=payments.pk).state == "succeeded"
    # A resumes with its old spec: the apply-and-prune that would delete "payments" is refused
    # before its first write, and so are a deletion and the status writes.
    with tenant_scope(organization), pytest.raises(LeaseLost):
        reconciler._converge(stale_cluster, stale_spec, stale)
    assert f"{cluster.public_id}.payments" in kafka_names(cluster)
    with pytest.raises(LeaseLost):
        driver_for(cluster.cell).delete(stale_spec, guard=stale.check)
    assert SimulatedObject.objects.filter(cluster_public_id=cluster.public_id).exists()
    with pytest.raises(LeaseLost), tenant_scope(organization):
        reconciler._mark_deleted(stale_cluster, stale, stale_spec.generation)
    row = fresh(cluster)
    for field in ("state", "generation", "observed_generation", "last_reconciled_at", "conditions"):
        assert getattr(row, field) == getattr(after_b, field), field
    # Giving back a lease it no longer holds leaves the newer holder's alone.
    newer = reconciler._take_lease(cluster.pk, "")
    assert reconciler._release_lease(stale) is False
    assert fresh(cluster).lease_token == newer.token
    assert fresh(cluster).lease_holder
    reconciler._release_lease(newer)
    # What the fence prevented: the same apply, unfenced, prunes the newer run's topic.
    driver_for(cluster.cell).apply(stale_spec, prune=True)
    assert f"{cluster.public_id}.payments" not in kafka_names(cluster)


@pytest.mark.django_db(transaction=True)
def test_a_lease_lost_between_the_apply_and_the_status_write_writes_no_status(
    django_capture_on_commit_callbacks,
):
    organization = make_org(owner=UserFactory(), name="Late writer")
    make_cell()
    with django_capture_on_commit_callbacks(execute=True):
        cluster, _ = make_cluster(organization)
    lease = reconciler._take_lease(cluster.pk, "")
    with tenant_scope(organization):
        spec = reconciler.build_spec(fresh(cluster))
    driver_for(cluster.cell).apply(spec, guard=lease.check)  # still holds: applied
    expire(lease)
    with pytest.raises(LeaseLost), transaction.atomic():
        lease.locked_cluster()
    with pytest.raises(LeaseLost):
        reconciler._record(cluster, lease)
    assert fresh(cluster).state == "ready"


@pytest.mark.django_db(transaction=True)
def test_reconcile_reports_a_stale_run_and_leaves_the_new_holder_alone(
    django_capture_on_commit_callbacks, monkeypatch
):
    organization = make_org(owner=UserFactory(), name="Overtaken")
    make_cell()
    with django_capture_on_commit_callbacks(execute=True):
        cluster, _ = make_cluster(organization)
    before = fresh(cluster)
    newer = {}
    # Timing, not a stand-in: the run's lease expires and another run takes the cluster just
    # before it converges (the real _converge then runs).
    real_converge = reconciler._converge

    def overtaken(cluster, spec, lease):
        expire(lease)
        newer["lease"] = reconciler._take_lease(cluster.pk, "")
        return real_converge(cluster, spec, lease)

    monkeypatch.setattr(reconciler, "_converge", overtaken)
    assert reconciler.reconcile(cluster.pk) == Outcome.STALE
    row = fresh(cluster)
    assert row.lease_token == newer["lease"].token
    assert row.lease_holder
    assert row.last_reconciled_at == before.last_reconciled_at


# The broker down when a change commits -------------------------------------------------------


@pytest.fixture
def broker():
    """A Redis of this test's own as the task broker of this process, which the test stops and
    starts again (the session's Redis keeps serving everything else)."""
    server = RedisServer()
    server.start()
    saved = app.conf.broker_url
    use_broker(server.url)
    try:
        yield server
    finally:
        use_broker(saved)
        server.stop()


def use_broker(url: str) -> None:
    app.conf.broker_url = url
    # The connection and producer pools were made for the previous URL.
    app._pool = None
    app.amqp._producer_pool = None


@pytest.mark.django_db(transaction=True)
@pytest.mark.celery_worker
def test_a_change_committed_while_the_broker_is_down_is_answered_and_done_later(
    broker, start_celery_worker
):
    owner = UserFactory()
    organization = make_org(owner=owner, name="Outage")
    make_cell()
    client = session_client(owner)
    base = f"/api/v1/orgs/{organization.public_id}"
    stop_process(broker.process)  # the broker is down

    created = client.post(
        f"{base}/clusters/",
        {"name": "events", "type": "serverless", "region": "eu-west-1"},
        format="json",
    )
    assert created.status_code == 202, created.content
    cluster_id = created.json()["cluster"]["id"]
    url = f"{base}/clusters/{cluster_id}/credentials/"
    first = client.post(url, {"name": "app"}, format="json", HTTP_IDEMPOTENCY_KEY="cred-1")
    assert first.status_code == 202, first.content
    replay = client.post(url, {"name": "app"}, format="json", HTTP_IDEMPOTENCY_KEY="cred-1")
    assert replay.status_code == 202
    assert replay.json()["credential"]["id"] == first.json()["credential"]["id"]
    assert replay.json()["operation"] == first.json()["operation"]
    assert replay["Location"] == first["Location"]
    with tenant_scope(organization):
        assert Credential.objects.filter(cluster__public_id=cluster_id).count() == 1
        operation = Operation.objects.get(public_id=first.json()["operation"]["id"])
        assert operation.state == "pending"
    cluster = Cluster.unscoped_all_tenants.get(public_id=cluster_id)
    assert cluster.reconcile_ticket == ""  # not marked queued: the resync will queue it
    assert cluster.observed_generation == 0

    broker.start()  # the broker is back, on the same port
    start_celery_worker(REDIS_URL=broker.url)
    reconcile_fleet.delay()  # beat's next tick
    wait_for(
        lambda: Operation.unscoped_all_tenants.get(pk=operation.pk).state == "succeeded",
        timeout=60,
        what="the resync to reconcile the credential",
    )
    cluster = fresh(cluster)
    assert cluster.state == "ready"
    assert cluster.observed_generation == cluster.generation
