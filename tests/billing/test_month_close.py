"""The month close on PostgreSQL: a golden month (serverless, standard and dedicated
clusters; a price change mid-month; a resize; a cluster deleted mid-hour; an adjustment after
the close) whose invoice is written out by hand to the cent; the replay of a closed month from
the ledger; incomplete hours (waiting, then estimated and alerted); two closes at once; the
beat job's timing; the month-to-date draft."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import override_settings

from billing import closing, tasks
from billing.accounts import billing_account_update
from billing.closing import Outcome, invoice_close, month_rated
from billing.models import (
    AlertKind,
    BillingAlert,
    ClosedMonth,
    Invoice,
    InvoiceLine,
    MeteringCursor,
    StripeOutbox,
    UsageAdjustment,
    UsageHour,
)
from billing.services import HourSnapshot, record_hours
from billing.tasks import close_months
from clusters.models import Cell, Cluster, ClusterSize, Dimension, Tier, TierPrice
from tenants.audit import Actor
from tenants.models import AuditEvent, Membership
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, make_cluster, make_org
from tests.support.clients import session_client

pytestmark = pytest.mark.django_db(transaction=True)

GB = 10**9
SYSTEM = Actor(system="tests")
HOUR = timedelta(hours=1)
OCTOBER, NOVEMBER, DECEMBER = (datetime(2026, m, 1, tzinfo=UTC) for m in (10, 11, 12))
PRICE_CUT = datetime(2026, 10, 16, tzinfo=UTC)
DELETED = datetime(2026, 10, 5, 12, 30, tzinfo=UTC)
CREATED_DEDICATED = datetime(2026, 10, 10, 9, 30, tzinfo=UTC)
RESIZED = datetime(2026, 10, 20, 14, 15, tzinfo=UTC)
# Closing time: two hours after October ended, with every hour complete.
CLOSE_AT = NOVEMBER + 2 * HOUR


def hours(start: datetime, end: datetime):
    at = start
    while at < end:
        yield at
        at += HOUR


def snapshot(cluster, dimension, hour, quantity, complete=True) -> HourSnapshot:
    return HourSnapshot(
        cluster_id=cluster.pk, dimension=dimension, hour=hour, quantity=quantity, complete=complete
    )


@pytest.fixture
def golden():
    """October 2026 of one organization, and another organization's cluster beside it."""
    organization = make_org(owner=UserFactory(), name="Acme")
    events, _ = make_cluster(organization, name="events")
    orders, _ = make_cluster(organization, tier_slug="standard", name="orders")
    ledger, _ = make_cluster(organization, tier_slug="dedicated", name="ledger", capacity_units=2)
    scratch, _ = make_cluster(organization, name="scratch")
    other, _ = make_cluster(make_org(owner=UserFactory(), name="Other"), name="events")
    for cluster, since in (
        (events, OCTOBER),
        (orders, OCTOBER),
        (ledger, CREATED_DEDICATED),
        (scratch, OCTOBER),
        (other, OCTOBER),
    ):
        ClusterSize.unscoped_all_tenants.filter(cluster=cluster).update(since=since)
        Cluster.unscoped_all_tenants.filter(pk=cluster.pk).update(created_at=since)
    ClusterSize.unscoped_all_tenants.create(
        organization=organization,
        cluster=ledger,
        tier=ledger.tier,
        capacity_units=4,
        since=RESIZED,
    )
    Cluster.unscoped_all_tenants.filter(pk=scratch.pk).update(deleted_at=DELETED)
    # Serverless ingress is cut from $0.08 to $0.06 per GB from 16 October.
    TierPrice.objects.create(
        tier=Tier.objects.get(slug="serverless"),
        dimension=Dimension.INGRESS_BYTES,
        micros=60_000,
        per_units=GB,
        effective_from=PRICE_CUT,
    )
    rows = []
    for hour in hours(OCTOBER, NOVEMBER):
        rows.append(snapshot(events, Dimension.PARTITION_HOURS, hour, 6))
        rows.append(snapshot(events, Dimension.STORAGE_BYTE_HOURS, hour, 1_000_000))
        before_cut = hour < PRICE_CUT
        rows.append(
            snapshot(
                events, Dimension.INGRESS_BYTES, hour, 2_500_000_000 if before_cut else 1_234_567
            )
        )
        rows.append(snapshot(orders, Dimension.CLUSTER_HOURS, hour, 1))
        rows.append(snapshot(other, Dimension.PARTITION_HOURS, hour, 100))
    rows.append(
        snapshot(orders, Dimension.INGRESS_BYTES, datetime(2026, 10, 7, 13, tzinfo=UTC), 3 * GB)
    )
    # Dedicated: 2 units from 09:30 on the 10th, 4 from 14:15 on the 20th (that hour counts 4).
    for hour in hours(datetime(2026, 10, 10, 9, tzinfo=UTC), NOVEMBER):
        rows.append(
            snapshot(
                ledger,
                Dimension.CAPACITY_UNIT_HOURS,
                hour,
                2 if hour < RESIZED - 15 * timedelta(minutes=1) else 4,
            )
        )
    # Deleted at 12:30 on the 5th: its hour of 12 counts.
    for hour in hours(OCTOBER, datetime(2026, 10, 5, 13, tzinfo=UTC)):
        rows.append(snapshot(scratch, Dimension.PARTITION_HOURS, hour, 2))
    record_hours(rows, now=CLOSE_AT - HOUR)
    return organization, {
        "events": events,
        "orders": orders,
        "ledger": ledger,
        "scratch": scratch,
        "other": other,
    }


# October as closed, worked out by hand (micro-dollars; cents half to even once per line):
# events  ingress   1-15 Oct: 360 h x 2.5 GB = 900 GB at $0.08            = 72,000,000 -> 7,200
# events  ingress  16-31 Oct: 384 h x 1,234,567 B = 474,073,728 B at $0.06
#                              = 28,444.42368 -> 28,444 (floored)        -> 3 (remainder -1,556)
# events  partitions: 6 x 744 h = 4,464 at $0.0015                       = 6,696,000 -> 670 (-4,000)
# events  storage: 1 MB x 744 h = 744,000,000 byte-hours at 137 per GB-h = 101.928 -> 101 -> 0 (101)
# orders  cluster-hours: 744 at $0.75                                    = 558,000,000 -> 55,800
# orders  ingress: 3 GB at $0.05                                         = 150,000 -> 15
# ledger  capacity-unit-hours: 245 h x 2 (10 Oct 09:00 to 20 Oct 14:00)
#         + 274 h x 4 (from the hour of the resize) = 1,586 at $1.50     = 2,379,000,000 -> 237,900
# scratch partitions: 2 x 109 h (1 Oct 00:00 to the hour of 12 on the 5th)
#         = 218 at $0.0015                                                = 327,000 -> 33 (-3,000)
# Total: 3,016,201,545 micro-dollars; 301,621 cents ($3,016.21).
GOLDEN_OCTOBER = [
    # cluster, dimension, segment start and end, quantity, unit price: micros per units;
    # micro-dollars, cents, remainder
    ("events", "ingress_bytes", OCTOBER, PRICE_CUT, 900 * GB, 80_000, GB, 72_000_000, 7_200, 0),
    ("events", "ingress_bytes", PRICE_CUT, NOVEMBER, 474_073_728, 60_000, GB, 28_444, 3, -1_556),
    ("events", "partition_hours", OCTOBER, NOVEMBER, 4_464, 1_500, 1, 6_696_000, 670, -4_000),
    ("events", "storage_byte_hours", OCTOBER, NOVEMBER, 744_000_000, 137, GB, 101, 0, 101),
    ("orders", "cluster_hours", OCTOBER, NOVEMBER, 744, 750_000, 1, 558_000_000, 55_800, 0),
    (
        "orders",
        "ingress_bytes",
        datetime(2026, 10, 7, 13, tzinfo=UTC),
        datetime(2026, 10, 7, 14, tzinfo=UTC),
        3 * GB,
        50_000,
        GB,
        150_000,
        15,
        0,
    ),
    (
        "ledger",
        "capacity_unit_hours",
        datetime(2026, 10, 10, 9, tzinfo=UTC),
        NOVEMBER,
        1_586,
        1_500_000,
        1,
        2_379_000_000,
        237_900,
        0,
    ),
    (
        "scratch",
        "partition_hours",
        OCTOBER,
        datetime(2026, 10, 5, 13, tzinfo=UTC),
        218,
        1_500,
        1,
        327_000,
        33,
        -3_000,
    ),
]


def lines_of(invoice: Invoice) -> list[tuple]:
    return [
        (
            line.cluster_name,
            line.dimension,
            line.segment_start,
            line.segment_end,
            line.quantity,
            line.unit_price_micros,
            line.per_units,
            line.amount_micros,
            line.amount_cents,
            line.remainder_micros,
        )
        for line in InvoiceLine.unscoped_all_tenants.filter(invoice=invoice).order_by("position")
    ]


def october_of(organization) -> Invoice:
    return Invoice.unscoped_all_tenants.get(organization=organization, period_start=OCTOBER)


def test_the_golden_month_closes_to_the_cent(golden):
    organization, clusters = golden
    with tenant_scope(organization):
        assert (
            invoice_close(organization=organization, period_start=OCTOBER, now=CLOSE_AT)
            == Outcome.CLOSED
        )

    invoice = october_of(organization)
    assert lines_of(invoice) == GOLDEN_OCTOBER
    assert (invoice.state, invoice.total_micros, invoice.total_cents) == (
        "open",
        3_016_201_545,
        301_621,
    )
    assert invoice.estimated is False
    assert invoice.finalized_at is not None
    # Each line names the cluster as it was; the deleted one too.
    assert (
        InvoiceLine.unscoped_all_tenants.filter(invoice=invoice, cluster_name="scratch")
        .get()
        .cluster_public_id
        == clusters["scratch"].public_id
    )
    # The month's hours are final: this organization's only.
    assert list(
        ClosedMonth.unscoped_all_tenants.values_list("organization", "period_start", "closed_at")
    ) == [(organization.pk, OCTOBER, CLOSE_AT)]
    # Its push to Stripe is queued, and the close is in the organization's audit trail.
    assert StripeOutbox.unscoped_all_tenants.filter(invoice=invoice, state="pending").count() == 1
    event = AuditEvent.unscoped_all_tenants.get(organization=organization, action="invoice.closed")
    assert event.after["total_cents"] == 301_621


def test_the_invoice_keeps_the_address_it_was_issued_to(golden):
    organization, _ = golden
    with tenant_scope(organization):
        billing_account_update(
            organization=organization, actor=SYSTEM, name="Acme GmbH", city="Berlin", country="DE"
        )
        invoice_close(organization=organization, period_start=OCTOBER, now=CLOSE_AT)
        billing_account_update(organization=organization, actor=SYSTEM, city="Hamburg")
    invoice = october_of(organization)
    assert (invoice.billed_to["name"], invoice.billed_to["city"]) == ("Acme GmbH", "Berlin")
    owner = Membership.unscoped_all_tenants.get(organization=organization).user
    page = session_client(owner).get(
        f"/orgs/{organization.public_id}/billing/invoices/{invoice.public_id}/"
    )
    assert page.status_code == 200
    assert "Berlin" in page.content.decode()
    assert "Hamburg" not in page.content.decode()


def test_closing_again_changes_nothing(golden):
    organization, _ = golden
    with tenant_scope(organization):
        invoice_close(organization=organization, period_start=OCTOBER, now=CLOSE_AT)
        first = list(InvoiceLine.objects.values_list("public_id", "amount_micros"))
        assert (
            invoice_close(organization=organization, period_start=OCTOBER, now=CLOSE_AT + HOUR)
            == Outcome.ALREADY
        )
        assert list(InvoiceLine.objects.values_list("public_id", "amount_micros")) == first
    assert StripeOutbox.unscoped_all_tenants.count() == 1


def test_replaying_a_closed_month_from_the_ledger_gives_the_same_invoice(golden):
    organization, clusters = golden
    with tenant_scope(organization):
        invoice_close(organization=organization, period_start=OCTOBER, now=CLOSE_AT)
        # Metering learns later that one final hour of October wrote 0.5 GB more: an adjustment,
        # and the closed invoice does not change.
        record_hours(
            [
                snapshot(
                    clusters["events"],
                    Dimension.INGRESS_BYTES,
                    datetime(2026, 10, 3, 5, tzinfo=UTC),
                    3_000_000_000,
                )
            ],
            now=CLOSE_AT + HOUR,
        )
        invoice_close(organization=organization, period_start=NOVEMBER, now=DECEMBER + 2 * HOUR)
        closed = {
            invoice.period_start: (lines_of(invoice), invoice.total_micros, invoice.total_cents)
            for invoice in Invoice.objects.all()
        }
        StripeOutbox.objects.all().delete()
        Invoice.objects.all().delete()
    assert set(closed) == {OCTOBER, NOVEMBER}
    with tenant_scope(organization):
        for start, (lines, micros, cents) in closed.items():
            replayed = month_rated(
                organization=organization, period_start=start, adjustments_billed_on=start
            )
            assert [
                (
                    line.cluster_name,
                    line.dimension,
                    line.segment_start,
                    line.segment_end,
                    line.quantity,
                    line.unit_price_micros,
                    line.per_units,
                    line.amount_micros,
                    line.amount_cents,
                    line.remainder_micros,
                )
                for line in replayed.lines
            ] == lines
            assert sum(line.amount_micros for line in replayed.lines) == micros
            assert sum(line.amount_cents for line in replayed.lines) == cents


def test_an_adjustment_after_the_close_goes_on_the_next_invoice_at_its_own_hours_price(golden):
    # 3 October 05:00 wrote 0.5 GB more than was closed: +500,000,000 bytes at that hour's
    # $0.08 per GB (not November's price) = 40,000 micro-dollars = 4 cents.
    organization, clusters = golden
    at = datetime(2026, 10, 3, 5, tzinfo=UTC)
    with tenant_scope(organization):
        invoice_close(organization=organization, period_start=OCTOBER, now=CLOSE_AT)
        record_hours(
            [snapshot(clusters["events"], Dimension.INGRESS_BYTES, at, 3_000_000_000)],
            now=CLOSE_AT + HOUR,
        )
        assert UsageAdjustment.objects.get().quantity == 500_000_000
        closed = invoice_close(
            organization=organization, period_start=NOVEMBER, now=DECEMBER + 2 * HOUR
        )
        assert closed == Outcome.CLOSED
        november = Invoice.objects.get(period_start=NOVEMBER)
    assert lines_of(october_of(organization)) == GOLDEN_OCTOBER
    assert lines_of(november) == [
        ("events", "ingress_bytes", at, at + HOUR, 500_000_000, 80_000, GB, 40_000, 4, 0)
    ]
    assert InvoiceLine.unscoped_all_tenants.get(invoice=november).kind == "adjustment"
    assert UsageAdjustment.unscoped_all_tenants.get().billed_period_start == NOVEMBER


def test_incomplete_hours_wait_for_the_grace_period_then_close_estimated_with_an_alert(golden):
    organization, clusters = golden
    gap = datetime(2026, 10, 30, 22, tzinfo=UTC)
    UsageHour.unscoped_all_tenants.filter(
        cluster=clusters["events"], dimension=Dimension.STORAGE_BYTE_HOURS, hour=gap
    ).update(complete=False)
    with (
        tenant_scope(organization),
        override_settings(SLUICE_BILLING_INCOMPLETE_GRACE_SECONDS=48 * 3600),
    ):
        waiting = invoice_close(organization=organization, period_start=OCTOBER, now=CLOSE_AT)
        assert waiting == Outcome.WAITING
        assert not Invoice.objects.exclude(state="draft").exists()
        assert not ClosedMonth.objects.exists()
        assert not BillingAlert.objects.exists()

        late = NOVEMBER + 48 * HOUR
        assert (
            invoice_close(organization=organization, period_start=OCTOBER, now=late)
            == Outcome.ESTIMATED
        )
    invoice = october_of(organization)
    assert invoice.estimated is True
    assert invoice.state == "open"
    # The same amounts (the hour is billed as measured so far); only the line holding the
    # incomplete hour is marked.
    assert lines_of(invoice) == GOLDEN_OCTOBER
    estimated = InvoiceLine.unscoped_all_tenants.filter(invoice=invoice, estimated=True)
    assert [(line.cluster_name, line.dimension) for line in estimated] == [
        ("events", "storage_byte_hours")
    ]
    alert = BillingAlert.objects.get()
    assert (alert.kind, alert.subject, alert.organization) == (
        AlertKind.ESTIMATED_CLOSE,
        invoice.public_id,
        organization,
    )


def test_two_closes_at_once_make_one_invoice(golden):
    organization, _ = golden
    outcomes, errors = [], []
    barrier = threading.Barrier(2)

    def close():
        try:
            barrier.wait(timeout=10)
            with tenant_scope(organization):
                outcomes.append(
                    invoice_close(organization=organization, period_start=OCTOBER, now=CLOSE_AT)
                )
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=close) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(outcomes) == sorted([Outcome.CLOSED, Outcome.ALREADY])
    assert Invoice.unscoped_all_tenants.filter(organization=organization).count() == 1
    assert InvoiceLine.unscoped_all_tenants.filter(organization=organization).count() == len(
        GOLDEN_OCTOBER
    )
    assert StripeOutbox.unscoped_all_tenants.count() == 1


def test_the_month_is_closed_only_once_every_cell_is_metered_past_its_end_and_the_grace(golden):
    _organization, _ = golden
    cells = list(Cell.objects.all())
    assert cells
    with override_settings(SLUICE_BILLING_CLOSE_GRACE_SECONDS=3600):
        assert closing.closable_month(CLOSE_AT) is None  # no cell metered yet
        for cell in cells:
            MeteringCursor.objects.update_or_create(
                cell=cell, defaults={"watermark": NOVEMBER + HOUR / 2}
            )
        assert closing.closable_month(CLOSE_AT) is None  # half an hour past: inside the grace
        MeteringCursor.objects.update(watermark=NOVEMBER + HOUR)
        assert closing.closable_month(CLOSE_AT) == OCTOBER
        assert closing.closable_month(DECEMBER + 2 * HOUR) is None  # November: not metered yet


def test_the_beat_job_closes_every_organization_of_the_month(golden, monkeypatch):
    _organization, _clusters = golden
    for cell in Cell.objects.all():
        MeteringCursor.objects.update_or_create(cell=cell, defaults={"watermark": CLOSE_AT})
    monkeypatch.setattr(tasks.timezone, "now", lambda: CLOSE_AT)
    assert close_months() == 2  # Acme and Other
    invoices = Invoice.unscoped_all_tenants.filter(period_start=OCTOBER)
    assert {(i.organization.name, i.state, i.total_cents) for i in invoices} == {
        ("Acme", "open", 301_621),
        # Other: 100 partitions x 744 h = 74,400 partition-hours at $0.0015 = $111.60
        ("Other", "open", 11_160),
    }
    assert close_months() == 0  # closed: nothing to queue


def test_the_month_to_date_draft_is_recomputed_and_replaced_by_the_close(golden):
    organization, clusters = golden
    with tenant_scope(organization):
        draft = closing.draft_refresh(organization=organization, period_start=OCTOBER)
        assert draft.state == "draft"
        assert draft.total_cents == 301_621
        record_hours(
            [
                snapshot(
                    clusters["orders"],
                    Dimension.INGRESS_BYTES,
                    datetime(2026, 10, 31, 23, tzinfo=UTC),
                    2 * GB,
                )
            ],
            now=CLOSE_AT,
        )
        # 2 GB more at Standard's $0.05 = 100,000 micro-dollars = 10 cents.
        again = closing.draft_refresh(organization=organization, period_start=OCTOBER)
        assert (again.pk, again.state, again.total_cents) == (draft.pk, "draft", 301_631)
        invoice_close(organization=organization, period_start=OCTOBER, now=CLOSE_AT + HOUR)
        closed = Invoice.objects.get(period_start=OCTOBER)
        assert (closed.pk, closed.state, closed.total_cents) == (draft.pk, "open", 301_631)
        assert closing.draft_refresh(organization=organization, period_start=OCTOBER) is None
