"""Usage where people see it: the cluster page's last 24 hours, and the operators' read-only
view of the ledger."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import UsageAdjustment, UsageHour
from billing.services import HourSnapshot, record_hours
from clusters.models import Cluster, ClusterSize, Dimension
from tenants.roles import Role
from tests.factories import UserFactory, add_member, close_month_of, make_cluster, make_org

pytestmark = pytest.mark.django_db

GB = 10**9


def this_hour():
    return timezone.now().replace(minute=0, second=0, microsecond=0)


@pytest.fixture
def owner():
    return UserFactory()


@pytest.fixture
def cluster(owner):
    cluster, _ = make_cluster(make_org(owner=owner, name="Charted"))
    # Created three days ago: the ledger rows below are of hours it existed in (rating refuses
    # an hour before a cluster's first tier, which would otherwise happen whenever the hours
    # written here fall in the current month, as they do from 01:00 on its first day).
    backdate(cluster, this_hour() - timedelta(days=3))
    return cluster


def backdate(cluster, since):
    Cluster.unscoped_all_tenants.filter(pk=cluster.pk).update(created_at=since)
    ClusterSize.unscoped_all_tenants.filter(cluster=cluster).update(since=since)


def cluster_page(client, cluster) -> str:
    response = client.get(f"/orgs/{cluster.organization.public_id}/clusters/{cluster.public_id}/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_cluster_page_charts_the_last_24_hours_with_the_limit(client, owner, cluster):
    now = this_hour()
    record_hours(
        [
            HourSnapshot(cluster.pk, Dimension.INGRESS_BYTES, now - timedelta(hours=3), GB, True),
            HourSnapshot(
                cluster.pk, Dimension.INGRESS_BYTES, now - timedelta(hours=2), GB // 2, True
            ),
            # Egress at half its hourly limit (300 MB/s * 3,600 s): the limit line is drawn.
            HourSnapshot(
                cluster.pk, Dimension.EGRESS_BYTES, now - timedelta(hours=1), 540 * GB, False
            ),
            HourSnapshot(cluster.pk, Dimension.INGRESS_BYTES, now - timedelta(days=2), GB, True),
        ]
    )
    client.force_login(owner)
    html = cluster_page(client, cluster)
    section = html[html.index('id="usage"') :]
    section = section[: section.index("</section>")]
    assert "last 24 hours" in section
    assert "Ingress (written)" in section
    assert "1.5 GB" in section  # the total of the last 24 hours; two days ago is not in it
    assert "360 GB" in section  # ingress limit per hour: 100 MB/s * 3,600 s
    assert "1.08 TB" in section  # egress limit per hour
    assert "50% of the limit" in section
    assert section.count('<svg class="usage-chart"') == 4
    assert section.count('class="usage-limit"') == 1  # only egress comes near its limit
    assert "(not complete yet)" in section
    assert 'class="usage-bar incomplete"' in section


def test_hours_with_nothing_recorded_read_not_measured_never_zero(client, owner, cluster):
    # A cell without Prometheus: metering records partition-hours only, so the cluster's four
    # hours so far have no ingress at all, and two of them no egress.
    now = this_hour()
    backdate(cluster, now - timedelta(hours=3))
    record_hours(
        [
            HourSnapshot(cluster.pk, Dimension.PARTITION_HOURS, now - timedelta(hours=h), 0, h > 0)
            for h in range(4)
        ]
        + [
            HourSnapshot(cluster.pk, Dimension.EGRESS_BYTES, now - timedelta(hours=3), GB, True),
            HourSnapshot(cluster.pk, Dimension.EGRESS_BYTES, now - timedelta(hours=2), 0, True),
        ]
    )
    client.force_login(owner)
    html = cluster_page(client, cluster)
    section = html[html.index('id="usage"') :]
    section = section[: section.index("</section>")]
    ingress = section[
        section.index("Ingress (written)") : section.index(
            "</tr>", section.index("Ingress (written)")
        )
    ]
    assert ingress.count('<span class="muted">not measured</span>') == 2  # total, busiest hour
    assert "0 B" not in ingress
    assert ingress.count("UTC: nothing to measure") == 20  # before the cluster existed
    assert ingress.count("UTC: not measured") == 4
    egress = section[
        section.index("Egress (read)") : section.index("</tr>", section.index("Egress (read)"))
    ]
    assert "1 GB" in egress  # the total of the hours measured
    assert "(2 hours not measured)" in egress
    assert ":00 UTC: 0 B<" in egress  # a measured hour with no traffic is a true zero
    # Partition-hours were recorded every hour: nothing is "not measured" there.
    partitions = section[section.index("Partition hours") :]
    partitions = partitions[: partitions.index("</tr>")]
    assert "not measured" not in partitions


def test_a_viewer_sees_the_usage_too(client, cluster):
    viewer = add_member(cluster.organization, Role.VIEWER).user
    client.force_login(viewer)
    assert 'id="usage"' in cluster_page(client, cluster)


# Admin ---------------------------------------------------------------------------------------


@pytest.fixture
def operator_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def ledger(cluster):
    hour = this_hour() - timedelta(hours=5)
    other, _ = make_cluster(make_org(name="Second Tenant"), name="other")
    record_hours(
        [
            HourSnapshot(cluster.pk, Dimension.INGRESS_BYTES, hour, 100, True),
            HourSnapshot(cluster.pk, Dimension.EGRESS_BYTES, hour, 5, False),
            HourSnapshot(other.pk, Dimension.INGRESS_BYTES, hour, 7, True),
        ]
    )
    close_month_of(cluster.organization, hour)
    record_hours([HourSnapshot(cluster.pk, Dimension.INGRESS_BYTES, hour, 130, True)])
    return cluster, other


def test_operators_read_every_tenants_ledger(operator_client, ledger):
    cluster, other = ledger
    html = operator_client.get("/admin/billing/usagehour/").content.decode()
    assert cluster.public_id in html
    assert other.public_id in html
    assert "Second Tenant" in html

    searched = operator_client.get("/admin/billing/usagehour/", {"q": other.public_id})
    assert cluster.public_id not in searched.content.decode()
    assert other.public_id in searched.content.decode()

    for filters, shown in [
        ({"dimension": "egress_bytes"}, {cluster.public_id}),
        ({"complete__exact": "1"}, {cluster.public_id, other.public_id}),
        ({"final": "yes"}, {cluster.public_id}),
        ({"final": "no", "dimension": "ingress_bytes"}, {other.public_id}),
        ({"hour__year": str(this_hour().year)}, {cluster.public_id, other.public_id}),
    ]:
        response = operator_client.get("/admin/billing/usagehour/", filters)
        assert response.status_code == 200, filters
        body = response.content.decode()
        assert {c for c in (cluster.public_id, other.public_id) if c in body} == shown, filters

    adjustments = operator_client.get("/admin/billing/usageadjustment/")
    assert adjustments.status_code == 200
    assert cluster.public_id in adjustments.content.decode()
    assert ">30<" in adjustments.content.decode()


def test_the_ledger_cannot_be_changed_from_the_admin(operator_client, ledger):
    row = UsageHour.unscoped_all_tenants.filter(dimension="egress_bytes").get()
    adjustment = UsageAdjustment.unscoped_all_tenants.get()
    assert operator_client.get("/admin/billing/usagehour/add/").status_code == 403
    view = operator_client.get(f"/admin/billing/usagehour/{row.pk}/change/")
    assert view.status_code == 200  # to read
    changed = operator_client.post(
        f"/admin/billing/usagehour/{row.pk}/change/", {"quantity": 1, "complete": "on"}
    )
    assert changed.status_code == 403
    deleted = operator_client.post(f"/admin/billing/usagehour/{row.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 403
    assert operator_client.get("/admin/billing/usageadjustment/add/").status_code == 403
    assert (
        operator_client.get(f"/admin/billing/usageadjustment/{adjustment.pk}/change/").status_code
        == 200
    )
    row.refresh_from_db()
    assert row.quantity == 5
