"""The operators' fleet dashboard in the admin: clusters by state, the stuck and the failed
ones with an inline retry (through the lifecycle, audited and logged), each cell's capacity and
health, the background services, the reconcile lag, billing's top organizations and alerts,
the recent failed operations; and the cluster admin pages: read-only inlines, deletion only
through the reconciler."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.core.cache import cache
from django.utils import timezone

from billing.models import AlertKind, BillingAlert, Invoice, MeteringCursor, UsageHour
from billing.services import month_start
from clusters import cell_health, fleet, lifecycle
from clusters.models import Cell, Cluster, ClusterState, Credential, Operation, Topic
from clusters.services import credential_create, topic_create
from controlplane.models import ServiceHeartbeat
from tenants.audit import Actor
from tenants.models import AuditEvent
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, make_cell, make_cluster, make_org

pytestmark = pytest.mark.django_db

DASHBOARD = "/admin/fleet/"


@pytest.fixture(autouse=True)
def probes_not_cached(settings):
    """Each test probes afresh (the cache is the test Redis, shared by the tests)."""
    settings.SLUICE_FLEET_HEALTH_CACHE_SECONDS = 0


@pytest.fixture
def operator():
    return UserFactory(is_staff=True, is_superuser=True, email="oncall@sluice.example")


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client


def new_cluster(organization, **fields) -> Cluster:
    """A cluster as the tenant would create it (its first reconcile, queued on commit, does
    not run inside the test's transaction)."""
    cluster, _operation = make_cluster(organization, **fields)
    return Cluster.unscoped_all_tenants.get(pk=cluster.pk)


def stuck_cluster(organization, *, waiting: timedelta, name: str = "stuck") -> Cluster:
    """A dedicated cluster (the simulated data plane takes a while with those), still
    provisioning, whose creation was asked for ``waiting`` ago."""
    cluster = new_cluster(organization, tier_slug="dedicated", name=name, capacity_units=1)
    assert cluster.state in (ClusterState.REQUESTED, ClusterState.PROVISIONING)
    Operation.unscoped_all_tenants.filter(cluster=cluster).update(
        created_at=timezone.now() - waiting
    )
    return cluster


def failed_cluster(organization, *, name: str = "broken") -> Cluster:
    cluster = new_cluster(organization, name=name)
    with tenant_scope(organization):
        cluster = Cluster.objects.get(pk=cluster.pk)
        lifecycle.record_failure(
            cluster,
            generation=cluster.generation,
            reason="NodePoolUnschedulable",
            message="0/3 nodes are available: insufficient memory",
        )
    return cluster


def test_the_index_links_the_dashboard_and_tenants_are_not_let_in(operator_client, client):
    assert 'href="/admin/fleet/"' in operator_client.get("/admin/").content.decode()
    tenant = UserFactory()
    make_org(owner=tenant)
    client.force_login(tenant)
    refused = client.get(DASHBOARD)
    assert refused.status_code == 302
    assert "/admin/login/" in refused["Location"]


def test_clusters_by_state_stuck_and_failed_with_their_reasons(operator_client, settings):
    settings.SLUICE_FLEET_STUCK_AFTER_SECONDS = 600
    organization = make_org(owner=UserFactory(), name="Stuck Org")
    long_waiting = stuck_cluster(organization, waiting=timedelta(minutes=20), name="slowpoke")
    stuck_cluster(organization, waiting=timedelta(minutes=2), name="fresh")
    broken = failed_cluster(organization)

    assert [cluster.pk for cluster in fleet.stuck_clusters()] == [long_waiting.pk]
    counts = {state: count for state, _, count in fleet.clusters_by_state()}
    assert counts[ClusterState.FAILED] == 1
    assert counts[ClusterState.REQUESTED] + counts[ClusterState.PROVISIONING] == 2

    page = operator_client.get(DASHBOARD)
    assert page.status_code == 200
    html = page.content.decode()
    stuck_table = html[html.index('id="stuck"') : html.index('id="failed"')]
    assert "slowpoke" in stuck_table
    assert "fresh" not in stuck_table
    assert "longer than 10 minutes" in stuck_table  # the threshold, as set
    failed_table = html[html.index('id="failed"') : html.index('id="cells"')]
    assert broken.public_id in failed_table
    assert "NodePoolUnschedulable" in failed_table
    assert "insufficient memory" in failed_table
    assert f'action="/admin/fleet/clusters/{broken.public_id}/retry/"' in failed_table
    # The reconcile lag: none of the three has converged yet (the reconciles queued on commit
    # do not run in this test's transaction); the oldest open change waits 20 minutes.
    lag = fleet.reconcile_lag()
    assert lag.unconverged == 3
    assert timedelta(minutes=19) < lag.age() < timedelta(minutes=21)


def test_the_inline_retry_goes_through_the_lifecycle_audited_and_logged(operator_client, operator):
    organization = make_org(owner=UserFactory(), name="Retry Org")
    broken = failed_cluster(organization)

    response = operator_client.post(f"/admin/fleet/clusters/{broken.public_id}/retry/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/fleet/#failed"
    broken = Cluster.unscoped_all_tenants.get(pk=broken.pk)
    assert broken.state != ClusterState.FAILED
    assert broken.failure_reason == ""
    retry = Operation.unscoped_all_tenants.get(cluster=broken, kind="cluster.retry")
    event = AuditEvent.unscoped_all_tenants.get(organization=organization, action="cluster.retried")
    assert event.actor_label == "oncall@sluice.example"
    assert event.target_id == broken.public_id
    logged = LogEntry.objects.get(user=operator, object_id=str(broken.pk))
    assert retry.public_id in logged.change_message
    # Reloading the result, or retrying what is no longer failed, changes nothing.
    assert (
        operator_client.get(f"/admin/fleet/clusters/{broken.public_id}/retry/").status_code == 302
    )
    again = operator_client.post(f"/admin/fleet/clusters/{broken.public_id}/retry/", follow=True)
    assert "Only failed clusters are retried" in again.content.decode()
    assert Operation.unscoped_all_tenants.filter(kind="cluster.retry").count() == 1


def test_a_viewing_operator_sees_no_retry_and_may_not_post_one(client):
    from django.contrib.auth.models import Permission

    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_cluster"))
    client.force_login(viewer)
    broken = failed_cluster(make_org(owner=UserFactory()))
    html = client.get(DASHBOARD).content.decode()
    assert broken.public_id in html
    assert "/retry/" not in html
    assert client.post(f"/admin/fleet/clusters/{broken.public_id}/retry/").status_code == 403
    assert Cluster.unscoped_all_tenants.get(pk=broken.pk).state == ClusterState.FAILED


def test_cells_show_capacity_as_bars_against_their_limits(operator_client):
    cell = make_cell()
    Cell.objects.filter(pk=cell.pk).update(
        max_shared_clusters=4, max_dedicated_units=10, max_shared_partitions=100
    )
    organization = make_org(owner=UserFactory())
    events = new_cluster(organization, name="events")
    new_cluster(organization, name="orders")
    new_cluster(organization, tier_slug="dedicated", name="big", capacity_units=2)
    with tenant_scope(organization):
        topic_create(
            cluster=events, actor=Actor(system="tests"), name="clicks", partitions=30, configs={}
        )

    (row,) = [row for row in fleet.cell_capacity() if row.cell.pk == cell.pk]
    assert (row.shared_clusters.used, row.shared_clusters.limit) == (2, 4)
    assert (row.dedicated_units.used, row.dedicated_units.limit) == (2, 10)
    assert (row.partitions.used, row.partitions.limit) == (30, 100)

    html = operator_client.get(DASHBOARD).content.decode()
    cells = html[html.index('id="cells"') :]
    assert '<meter min="0" max="4" low="3" high="3" optimum="0" value="2"' in cells
    assert '<meter min="0" max="10" low="8" high="8" optimum="0" value="2"' in cells
    assert '<meter min="0" max="100" low="80" high="80" optimum="0" value="30"' in cells
    assert "2 / 4" in cells
    assert "simulated data plane" in cells  # the API server column, with the simulated driver
    assert "no Prometheus: not metered" in cells
    assert "not metered (no Prometheus)" in cells  # billing's metering column


def test_a_prometheus_that_does_not_answer_is_shown_with_its_reason_within_the_timeout(
    settings,
):
    settings.SLUICE_FLEET_PROBE_TIMEOUT_SECONDS = 1.0
    # A TEST-NET-1 address (RFC 5737): nothing answers there, so the probe must give up.
    cell = make_cell(prometheus_url="http://192.0.2.1:9090")
    started = timezone.now()
    health = cell_health.cell_health(cell)
    assert not health.prometheus.ok
    assert health.prometheus.text
    assert timezone.now() - started < timedelta(seconds=5)
    refused = make_cell(slug="closed-port", prometheus_url="http://127.0.0.1:9")
    assert not cell_health.probe_prometheus(refused).ok


def test_probes_are_reused_for_the_cache_seconds(settings):
    settings.SLUICE_FLEET_HEALTH_CACHE_SECONDS = 60
    cell = make_cell(prometheus_url="http://127.0.0.1:9")
    cache.delete(cell_health.CACHE_KEY.format(pk=cell.pk))
    first = cell_health.cell_health(cell)
    cell.prometheus_url = ""  # what a probe would now say differently
    assert cell_health.cell_health(cell) == first
    cache.delete(cell_health.CACHE_KEY.format(pk=cell.pk))
    assert cell_health.cell_health(cell).prometheus.text == "no Prometheus: not metered"


def test_metering_lag_per_cell(operator_client):
    now = timezone.now()
    cell = make_cell(prometheus_url="http://127.0.0.1:9")
    MeteringCursor.objects.create(cell=cell, watermark=now - timedelta(hours=5))
    (fact,) = [fact for fact in fleet.cell_facts() if fact.key == "metering"]
    text, alarming = fact.values([cell])[cell.pk]
    assert text.startswith("5\xa0hours")
    assert alarming
    MeteringCursor.objects.filter(cell=cell).update(watermark=now - timedelta(minutes=70))
    text, alarming = fact.values([cell])[cell.pk]
    assert text.startswith("1\xa0hour, 10\xa0minutes")
    assert not alarming


def test_background_services_heartbeats_workers_and_queues(operator_client):
    now = timezone.now()
    ServiceHeartbeat.objects.create(service="beat", seen_at=now - timedelta(seconds=10))
    ServiceHeartbeat.objects.create(service="metering", seen_at=now - timedelta(minutes=10))
    html = operator_client.get(DASHBOARD).content.decode()
    section = html[html.index('id="background"') :]
    beat = section[section.index("<td>beat</td>") :]
    beat = beat[: beat.index("</tr>")]
    assert "late" not in beat
    metering = section[section.index("<td>metering</td>") :]
    metering = metering[: metering.index("</tr>")]
    assert "late: 10\xa0minutes ago" in metering
    assert "Workers answering a ping" in section
    assert '<tr class="queue"><td>celery</td>' in section


def test_top_organizations_by_month_to_date_cost_with_their_traffic(operator_client):
    now = timezone.now()
    start = month_start(now)
    small, big = (
        make_org(owner=UserFactory(), name="Small"),
        make_org(owner=UserFactory(), name="Big"),
    )
    cluster = new_cluster(big, name="firehose")
    for organization, micros, cents in (
        (small, 1_250_000, 125),
        (big, 1_234_567_890_000, 123_456_789),
    ):
        Invoice.unscoped_all_tenants.create(
            organization=organization,
            period_start=start,
            period_end=(start + timedelta(days=32)).replace(day=1),
            total_micros=micros,
            total_cents=cents,
            rated_at=now,
        )
    UsageHour.unscoped_all_tenants.create(
        organization=big,
        cluster=cluster,
        dimension="ingress_bytes",
        hour=start,
        quantity=2_500_000_000,
        complete=True,
        computed_at=now,
    )
    rows = fleet.fleet_sections()
    (section,) = [section for section in rows if section.key == "top-organizations"]
    table = section.context()["rows"]
    assert [row["organization"].name for row in table] == ["Big", "Small"]
    assert table[0]["cost"] == "$1,234,567.89"
    assert table[0]["ingress"] == "2.5 GB"
    assert table[0]["egress"] == "0 B"
    assert table[1]["cost"] == "$1.25"
    html = operator_client.get(DASHBOARD).content.decode()
    assert html.index("$1,234,567.89") < html.index("$1.25")


def test_recent_errors_failed_operations_and_open_billing_alerts(operator_client):
    organization = make_org(owner=UserFactory(), name="Erring")
    broken = failed_cluster(organization)
    BillingAlert.objects.create(
        kind=AlertKind.STRIPE_REFUSED, subject="in_123", message="Stripe 401: revoked key"
    )
    html = operator_client.get(DASHBOARD).content.decode()
    errors = html[html.index('id="recent-errors"') :]
    failed = Operation.unscoped_all_tenants.get(cluster=broken, state="failed")
    assert failed.public_id in errors
    assert "insufficient memory" in errors
    alerts = html[html.index('id="billing-alerts"') :]
    assert "Stripe 401: revoked key" in alerts


# The cluster admin pages ------------------------------------------------------------------------


def test_a_clusters_page_shows_its_topics_credentials_and_operations_read_only(operator_client):
    organization = make_org(owner=UserFactory())
    cluster = new_cluster(organization, name="events")
    with tenant_scope(organization):
        topic_create(
            cluster=cluster, actor=Actor(system="tests"), name="clicks", partitions=3, configs={}
        )
        credential, _password, _operation = credential_create(
            cluster=cluster, actor=Actor(system="tests"), name="ingest app"
        )
    html = operator_client.get(f"/admin/clusters/cluster/{cluster.pk}/change/").content.decode()
    assert "clicks" in html
    assert credential.username in html
    assert "cluster.create" in html
    assert "password_sealed" not in html
    assert 'name="topics-0-partitions"' not in html  # shown, not editable
    assert 'name="topics-MAX_NUM_FORMS" value="0"' in html  # none added here


def test_clusters_are_deleted_only_through_the_reconciler_after_a_confirmation(
    operator_client, operator
):
    organization = make_org(owner=UserFactory(), name="Leaving")
    cluster = new_cluster(organization, name="doomed")
    assert operator_client.get(f"/admin/clusters/cluster/{cluster.pk}/delete/").status_code == 403
    listing = operator_client.get("/admin/clusters/cluster/").content.decode()
    assert 'value="delete_selected"' not in listing
    assert 'value="delete_through_reconciler"' in listing

    asked = operator_client.post(
        "/admin/clusters/cluster/",
        {"action": "delete_through_reconciler", "_selected_action": [cluster.pk]},
    )
    assert asked.status_code == 200
    assert "doomed" in asked.content.decode()
    assert Cluster.unscoped_all_tenants.get(pk=cluster.pk).delete_requested_at is None

    done = operator_client.post(
        "/admin/clusters/cluster/",
        {
            "action": "delete_through_reconciler",
            "_selected_action": [cluster.pk],
            "confirmed": "yes",
        },
    )
    assert done.status_code == 302
    cluster = Cluster.unscoped_all_tenants.get(pk=cluster.pk)
    assert cluster.delete_requested_at is not None
    assert cluster.state == ClusterState.DELETING  # the reconciler's, from here on
    assert Operation.unscoped_all_tenants.filter(cluster=cluster, kind="cluster.delete").exists()
    event = AuditEvent.unscoped_all_tenants.get(
        organization=organization, action="cluster.delete_requested"
    )
    assert event.actor_label == "oncall@sluice.example"
    assert LogEntry.objects.filter(user=operator, object_id=str(cluster.pk)).exists()


@pytest.mark.django_db(transaction=True)
def test_the_reconciler_then_deletes_the_cluster_and_what_it_holds(operator_client):
    """Committed, as in production: the reconcile queued on commit runs (in this process) on
    the simulated data plane and takes the cluster, its topics and credentials away."""
    organization = make_org(owner=UserFactory(), name="Leaving")
    cluster = new_cluster(organization, name="doomed")
    with tenant_scope(organization):
        topic_create(
            cluster=cluster, actor=Actor(system="tests"), name="clicks", partitions=3, configs={}
        )
        credential_create(cluster=cluster, actor=Actor(system="tests"), name="ingest app")
    operator_client.post(
        "/admin/clusters/cluster/",
        {
            "action": "delete_through_reconciler",
            "_selected_action": [cluster.pk],
            "confirmed": "yes",
        },
    )
    cluster = Cluster.unscoped_all_tenants.get(pk=cluster.pk)
    assert cluster.state == ClusterState.DELETED
    assert not Topic.unscoped_all_tenants.filter(cluster=cluster, deleted_at__isnull=True)
    assert not Credential.unscoped_all_tenants.filter(cluster=cluster, deleted_at__isnull=True)
    assert AuditEvent.unscoped_all_tenants.filter(
        organization=organization, action="cluster.deleted"
    ).exists()
