"""The operators' fleet dashboard in a real browser: a stuck and a failed cluster are shown,
the failed one with its reason, and its inline retry works (the page comes back with the
cluster out of the failed list and a message saying so)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from clusters import lifecycle
from clusters.models import Cluster, ClusterState, Operation
from tenants.models import AuditEvent
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, make_cluster, make_org
from tests.support.browser import in_viewport, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def quick_probes(settings):
    # No worker runs beside the live server: its ping waits the whole timeout.
    settings.SLUICE_FLEET_PROBE_TIMEOUT_SECONDS = 0.2
    settings.SLUICE_FLEET_HEALTH_CACHE_SECONDS = 0
    settings.SLUICE_FLEET_STUCK_AFTER_SECONDS = 900


def test_the_dashboard_shows_a_stuck_and_a_failed_cluster_and_retries_the_failed_one(
    watched_page, base_url
):
    organization = make_org(owner=UserFactory(), name="Fleet Tenant")
    stuck, _ = make_cluster(organization, tier_slug="dedicated", name="slowpoke", capacity_units=1)
    Operation.unscoped_all_tenants.filter(cluster=stuck).update(
        created_at=timezone.now() - timedelta(hours=1)
    )
    broken, _ = make_cluster(organization, name="broken")
    with tenant_scope(organization):
        broken = Cluster.objects.get(pk=broken.pk)
        lifecycle.record_failure(
            broken,
            generation=broken.generation,
            reason="NodePoolUnschedulable",
            message="0/3 nodes are available: insufficient memory",
        )
    operator = UserFactory(is_staff=True, is_superuser=True, email="oncall@sluice.example")
    sign_in(watched_page, operator, base_url)

    watched_page.goto("/admin/")
    watched_page.get_by_role("link", name="Fleet dashboard").click()
    assert watched_page.get_by_role("heading", name="Fleet dashboard").is_visible()

    stuck_row = watched_page.locator("tr.stuck-cluster")
    assert stuck_row.count() == 1
    assert "slowpoke" in stuck_row.inner_text()
    assert "(1\xa0hour)" in stuck_row.inner_text()
    failed_row = watched_page.locator("tr.failed-cluster")
    assert failed_row.count() == 1
    assert "NodePoolUnschedulable" in failed_row.inner_text()
    assert "insufficient memory" in failed_row.inner_text()
    assert watched_page.locator("tr.cell-row meter").count() == 3

    failed_row.get_by_role("button", name="Retry broken").click()

    watched_page.wait_for_url("**/admin/fleet/#failed")
    message = watched_page.locator(".messagelist .success")
    assert "Retrying broken" in message.inner_text()
    assert in_viewport(watched_page, ".messagelist .success")
    assert watched_page.locator("tr.failed-cluster").count() == 0
    assert Cluster.unscoped_all_tenants.get(pk=broken.pk).state != ClusterState.FAILED
    assert AuditEvent.unscoped_all_tenants.filter(
        organization=organization, action="cluster.retried", actor_label="oncall@sluice.example"
    ).exists()
    # Reloading the page the retry ended on is the dashboard again, not a second retry.
    assert watched_page.reload().status == 200
    assert Operation.unscoped_all_tenants.filter(cluster=broken, kind="cluster.retry").count() == 1
