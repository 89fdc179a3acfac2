"""The final invoice of a closed organization, on PostgreSQL: beat closes its months still
open, the partial month of its closing included, once every cell's metering has caught up
with the closing (not before), as the month close closes any month (rated, recorded open,
its push to Stripe queued); a second run, and the regular month close after the month's end,
change nothing; an organization with nothing to bill gets no invoice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings

from billing import final_invoices, tasks
from billing.models import (
    ClosedMonth,
    Invoice,
    InvoiceLine,
    MeteringCursor,
    StripeOutbox,
    UsageHour,
)
from billing.services import HourSnapshot, record_hours
from clusters.models import Cell, Cluster, ClusterSize, Dimension
from tenants import services
from tenants.audit import Actor
from tenants.models import Organization
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, close_month_of, make_cluster, make_org

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("one_hour_of_grace"),
]

HOUR = timedelta(hours=1)
OCTOBER, NOVEMBER, DECEMBER = (datetime(2026, m, 1, tzinfo=UTC) for m in (10, 11, 12))
EVENTS_DELETED = datetime(2026, 11, 12, 10, 20, tzinfo=UTC)
ORDERS_CREATED = datetime(2026, 11, 3, tzinfo=UTC)
ORDERS_DELETED = datetime(2026, 11, 18, 6, tzinfo=UTC)
CLOSED = datetime(2026, 11, 20, 9, 20, tzinfo=UTC)
# Metering must pass the end of the closing's hour (an hour after it at most) and the grace.
CAUGHT_UP = CLOSED + HOUR + HOUR


@pytest.fixture
def one_hour_of_grace():
    with override_settings(SLUICE_BILLING_CLOSE_GRACE_SECONDS=3600):
        yield


def hours(start: datetime, end: datetime):
    at = start
    while at < end:
        yield at
        at += HOUR


def metered_through(moment: datetime) -> None:
    for cell in Cell.objects.all():
        MeteringCursor.objects.update_or_create(cell=cell, defaults={"watermark": moment})


def close(organization: Organization, owner, *, at: datetime) -> None:
    with tenant_scope(organization):
        services.organization_close(
            organization=organization,
            actor=Actor(user=owner),
            actor_role=Role.OWNER,
            confirm_name=organization.name,
        )
    Organization.objects.filter(pk=organization.pk).update(closed_at=at)


def live(cluster, since: datetime, until: datetime | None = None) -> None:
    """The cluster as the ledger knows it: created at ``since``, deleted at ``until``."""
    ClusterSize.unscoped_all_tenants.filter(cluster=cluster).update(since=since)
    clusters = Cluster.unscoped_all_tenants.filter(pk=cluster.pk)
    clusters.update(created_at=since)
    if until is not None:
        clusters.update(deleted_at=until, state="deleted")


@pytest.fixture
def closed_on_the_20th():
    """Acme: October already closed; in November a serverless cluster deleted on the 12th and
    a Standard one that lived from the 3rd to the 18th; closed on the 20th. Beside it, Other,
    still open, with a cluster of its own."""
    owner = UserFactory()
    organization = make_org(owner=owner, name="Acme")
    events, _ = make_cluster(organization, name="events")
    orders, _ = make_cluster(organization, tier_slug="standard", name="orders")
    other, _ = make_cluster(make_org(owner=UserFactory(), name="Other"), name="events")
    live(events, OCTOBER, EVENTS_DELETED)
    live(orders, ORDERS_CREATED, ORDERS_DELETED)
    live(other, NOVEMBER)
    close_month_of(organization, OCTOBER)
    rows = [
        HourSnapshot(events.pk, Dimension.PARTITION_HOURS, hour, 4, True)
        # Deleted at 10:20 on the 12th: its hour of 10 counts.
        for hour in hours(NOVEMBER, datetime(2026, 11, 12, 11, tzinfo=UTC))
    ]
    rows += [
        HourSnapshot(orders.pk, Dimension.CLUSTER_HOURS, hour, 1, True)
        for hour in hours(ORDERS_CREATED, ORDERS_DELETED)
    ]
    rows += [
        HourSnapshot(other.pk, Dimension.PARTITION_HOURS, hour, 1, True)
        for hour in hours(NOVEMBER, CLOSED)
    ]
    record_hours(rows, now=CLOSED)
    close(organization, owner, at=CLOSED)
    return organization


# November as the final invoice, worked out by hand (micro-dollars; cents half to even):
# events partition-hours: 4 x 275 h (1 Nov 00:00 to 12 Nov 11:00) = 1,100 at $0.0015
#                                                   = 1,650,000 -> 165
# orders cluster-hours: 366 h (3 Nov 00:00 to 18 Nov 06:00) at $0.75
#                                                   = 274,500,000 -> 27,450
# Total: 276,150,000 micro-dollars; 27,615 cents ($276.15).
FINAL_NOVEMBER = {
    # cluster, dimension, segment start and end, quantity, micros, cents
    (
        "events",
        "partition_hours",
        NOVEMBER,
        datetime(2026, 11, 12, 11, tzinfo=UTC),
        1_100,
        1_650_000,
        165,
    ),
    ("orders", "cluster_hours", ORDERS_CREATED, ORDERS_DELETED, 366, 274_500_000, 27_450),
}


def lines_of(invoice: Invoice) -> set[tuple]:
    return set(
        InvoiceLine.unscoped_all_tenants.filter(invoice=invoice).values_list(
            "cluster_name",
            "dimension",
            "segment_start",
            "segment_end",
            "quantity",
            "amount_micros",
            "amount_cents",
        )
    )


def test_the_final_invoice_waits_for_metering_to_pass_the_closing(closed_on_the_20th):
    organization = closed_on_the_20th
    metered_through(CAUGHT_UP - timedelta(minutes=1))
    assert final_invoices.final_invoices_close(now=CAUGHT_UP) == 0
    assert not ClosedMonth.unscoped_all_tenants.filter(period_start=NOVEMBER).exists()
    assert not Invoice.unscoped_all_tenants.filter(state="open").exists()
    assert organization.pk not in [
        o.pk for o in final_invoices.organizations_awaiting_final_invoice(through=CLOSED)
    ]


def test_beat_closes_the_partial_month_once_metering_caught_up(closed_on_the_20th, monkeypatch):
    organization = closed_on_the_20th
    metered_through(CAUGHT_UP)
    monkeypatch.setattr(final_invoices.timezone, "now", lambda: CAUGHT_UP)

    assert tasks.close_closed_organizations() == 1

    invoice = Invoice.unscoped_all_tenants.get(organization=organization)
    assert (invoice.period_start, invoice.state) == (NOVEMBER, "open")
    assert lines_of(invoice) == FINAL_NOVEMBER
    assert (invoice.total_micros, invoice.total_cents) == (276_150_000, 27_615)
    assert StripeOutbox.unscoped_all_tenants.filter(invoice=invoice, state="pending").count() == 1
    assert ClosedMonth.unscoped_all_tenants.get(
        organization=organization, period_start=NOVEMBER
    ).closed_at == (CAUGHT_UP)
    # The other organization's month is still open: it is closed after the month's end.
    assert not ClosedMonth.unscoped_all_tenants.exclude(organization=organization).exists()

    # Again: nothing to do.
    assert tasks.close_closed_organizations() == 0
    assert Invoice.unscoped_all_tenants.filter(organization=organization).count() == 1
    assert StripeOutbox.unscoped_all_tenants.count() == 1

    # After the month's end the regular close bills Other, and leaves Acme's November alone.
    after_november = DECEMBER + 2 * HOUR
    metered_through(after_november)
    monkeypatch.setattr(tasks.timezone, "now", lambda: after_november)
    assert tasks.close_months() == 1
    # Other: 1 partition x 466 h (1 Nov 00:00 to 20 Nov 10:00) at $0.0015 = 699,000 -> 70.
    other = Invoice.unscoped_all_tenants.get(organization__name="Other")
    assert (other.total_micros, other.total_cents) == (699_000, 70)
    assert Invoice.unscoped_all_tenants.filter(organization=organization).count() == 1
    assert lines_of(Invoice.unscoped_all_tenants.get(organization=organization)) == FINAL_NOVEMBER


def test_every_month_still_open_is_closed_up_to_the_closing():
    """Closed early in December, before November was closed: both are billed."""
    owner = UserFactory()
    organization = make_org(owner=owner, name="Acme")
    events, _ = make_cluster(organization, name="events")
    live(events, NOVEMBER, datetime(2026, 12, 1, 1, 30, tzinfo=UTC))
    record_hours(
        [
            HourSnapshot(events.pk, Dimension.PARTITION_HOURS, hour, 2, True)
            for hour in hours(NOVEMBER, datetime(2026, 12, 1, 2, tzinfo=UTC))
        ],
        now=DECEMBER + 2 * HOUR,
    )
    closed_at = datetime(2026, 12, 1, 3, tzinfo=UTC)
    close(organization, owner, at=closed_at)
    metered_through(closed_at + 2 * HOUR)

    assert final_invoices.months_to_close(Organization.objects.get(pk=organization.pk)) == [
        NOVEMBER,
        DECEMBER,
    ]
    assert final_invoices.final_invoices_close(now=closed_at + 2 * HOUR) == 2

    invoices = Invoice.unscoped_all_tenants.filter(organization=organization)
    # November: 2 x 720 h = 1,440 partition-hours at $0.0015 = 2,160,000 -> 216 cents.
    # December: 2 x 2 h (00:00 and the hour of its deletion, 01:00) = 4 -> 6,000 -> 1 cent.
    assert {(i.period_start, i.state, i.total_micros, i.total_cents) for i in invoices} == {
        (NOVEMBER, "open", 2_160_000, 216),
        (DECEMBER, "open", 6_000, 1),
    }
    assert StripeOutbox.unscoped_all_tenants.count() == 2


def test_an_organization_with_nothing_to_bill_gets_no_invoice():
    owner = UserFactory()
    organization = make_org(owner=owner, name="Quiet")
    make_cluster(make_org(owner=UserFactory(), name="Other"))  # a cell, and metering of it
    close(organization, owner, at=CLOSED)
    metered_through(CAUGHT_UP)

    assert final_invoices.final_invoices_close(now=CAUGHT_UP) == 0

    assert not Invoice.unscoped_all_tenants.filter(organization=organization).exists()
    assert not StripeOutbox.unscoped_all_tenants.exists()
    # Its month is closed all the same: it is not looked at again.
    assert ClosedMonth.unscoped_all_tenants.filter(
        organization=organization, period_start=NOVEMBER
    ).exists()
    assert final_invoices.organizations_awaiting_final_invoice(through=CAUGHT_UP) == []


def test_an_incomplete_hour_waits_the_grace_from_the_closing_not_from_the_months_end(
    closed_on_the_20th,
):
    # A gap in events' last hours: the final invoice waits 48 hours from the closing (the
    # partial month's end), not from 1 December, then closes estimated.
    organization = closed_on_the_20th
    UsageHour.unscoped_all_tenants.filter(
        organization=organization, hour=datetime(2026, 11, 12, 10, tzinfo=UTC)
    ).update(complete=False)
    metered_through(CAUGHT_UP)
    with override_settings(SLUICE_BILLING_INCOMPLETE_GRACE_SECONDS=48 * 3600):
        assert final_invoices.final_invoices_close(now=CAUGHT_UP) == 0
        assert final_invoices.final_invoices_close(now=CLOSED + 48 * HOUR) == 1
    invoice = Invoice.unscoped_all_tenants.get(organization=organization)
    assert (invoice.state, invoice.estimated, invoice.total_cents) == ("open", True, 27_615)
