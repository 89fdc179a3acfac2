"""A cluster's page shows what it has cost this month so far (billing/panels.py): its row of
the Billing tab, the draft invoice's cents, with the amounts worked out by hand; only to the
roles that read billing, and never to another organization."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from billing.models import MeteringCursor
from billing.services import HourSnapshot, record_hours
from clusters.models import ClusterSize, Dimension
from tenants.roles import Role
from tests.factories import UserFactory, add_member, make_cluster, make_org
from tests.support.clients import session_client

pytestmark = pytest.mark.django_db

H = timedelta(hours=1)


def this_month() -> datetime:
    return timezone.now().astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def record(cluster, dimension, quantities: dict[datetime, int], *, complete: bool = True):
    record_hours(
        [
            HourSnapshot(cluster.pk, dimension, hour, quantity, complete)
            for hour, quantity in quantities.items()
        ]
    )


def panel_of(client, cluster) -> str:
    response = client.get(f"/orgs/{cluster.organization.public_id}/clusters/{cluster.public_id}/")
    assert response.status_code == 200
    html = response.content.decode()
    if 'id="month-to-date-cost"' not in html:
        return ""
    section = html[html.index('id="month-to-date-cost"') :]
    return section[: section.index("</section>")]


@pytest.fixture
def owner():
    return UserFactory()


@pytest.fixture
def events(owner):
    """A Serverless cluster's month so far: 15,432,098,625,000 bytes written at 80,000
    micro-dollars per 10^9 bytes, and 3 partitions for 10 hours (the last hour's samples
    missing, after metering closed it), at 1,500 micro-dollars per partition-hour."""
    org = make_org(owner=owner, name="Costly")
    cluster, _ = make_cluster(org, name="events")
    start = this_month()
    ClusterSize.unscoped_all_tenants.filter(organization=org).update(since=start - 40 * 24 * H)
    record(cluster, Dimension.INGRESS_BYTES, {start: 15_432_098_625_000})
    record(cluster, Dimension.PARTITION_HOURS, {start + n * H: 3 for n in range(9)})
    record(cluster, Dimension.PARTITION_HOURS, {start + 9 * H: 3}, complete=False)
    record(cluster, Dimension.INGRESS_BYTES, {start - H: 10**15})  # last month: not in
    MeteringCursor.objects.create(cell=cluster.cell, watermark=start + 12 * H)  # hours closed
    return cluster


def test_the_cluster_page_shows_its_month_so_far_as_the_draft_invoice_rates_it(owner, events):
    # Ingress: 15,432,098,625,000 * 80,000 / 10^9 = 1,234,567,890 micro-dollars = 123,456.789
    # cents -> 123,457 = $1,234.57. Partitions: 30 partition-hours * 1,500 = 45,000
    # micro-dollars = 4.5 cents -> 4 (half to even). Total $1,234.61, estimated (an hour lacks
    # samples). Last month's 10^15 bytes are not in it.
    section = panel_of(session_client(owner), events)

    assert '<strong>$1,234.61</strong> <span class="muted small-print">estimated</span>' in section
    assert "up to the last metered hour" in section


def test_a_cluster_with_nothing_this_month_says_so(owner):
    cluster, _ = make_cluster(make_org(owner=owner, name="Quiet"), name="quiet")

    section = panel_of(session_client(owner), cluster)

    assert "Nothing used this month yet." in section
    assert "<strong>" not in section


def test_a_viewer_does_not_see_the_cost(events):
    viewer = add_member(events.organization, Role.VIEWER).user

    assert panel_of(session_client(viewer), events) == ""


def test_another_organizations_cluster_page_cannot_be_reached(events):
    stranger = UserFactory()
    make_org(owner=stranger, name="Elsewhere")
    client = session_client(stranger)

    response = client.get(f"/orgs/{events.organization.public_id}/clusters/{events.public_id}/")

    assert response.status_code == 404
    assert "$1,234.61" not in response.content.decode()
