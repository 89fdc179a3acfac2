"""Invoices as recorded for a month (the lines as rating computed them) and read back: the
API's JSON and the lines' CSV, checked byte for byte against an invoice written out by hand,
the state moving only forward, one invoice per organization and month, and who may read."""

import json
from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, transaction

from billing import invoices
from billing.accounts import billing_account_of
from billing.invoices import LineRecord, dollars, invoice_move, invoice_record, month_period
from billing.models import Invoice, InvoiceLine, InvoiceState
from foundation.errors import Conflict, InvalidInput
from tenants.audit import Actor
from tenants.models import AuditEvent
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, add_member, make_org
from tests.support.clients import session_client

pytestmark = pytest.mark.django_db

SYSTEM = Actor(system="tests")
OCT_1, OCT_15_NOON = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 15, 12, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
SEP_30_23H = datetime(2026, 9, 30, 23, tzinfo=UTC)
CREATED = datetime(2026, 11, 1, 2, 0, 0, tzinfo=UTC)

# October 2026 of one cluster, worked out by hand:
# - 3 partitions all month: 3 x 744 h = 2,232 partition-hours at 1,500 micro-dollars each
#   = 3,348,000 micro-dollars = 334.8 cents -> 335 (half to even), remainder -2,000;
# - 12,345,678,901 bytes written until a price change on the 15th at noon, at 80,000 micros
#   per 10^9 bytes = 987,654.31208 -> 987,654 micros (floored) = 98.7654 cents -> 99,
#   remainder -2,346;
# - an adjustment: September's last hour stored 3,600 GB-hours too many, at 137 micros per
#   10^9 byte-hours = -493,200 micros = -49.32 cents -> -49, remainder -3,200.
# Total: 3,348,000 + 987,654 - 493,200 = 3,842,454 micros; 335 + 99 - 49 = 385 cents.
LINES = [
    LineRecord(
        cluster_public_id="kc_events",
        cluster_name="events",
        dimension="partition_hours",
        segment_start=OCT_1,
        segment_end=NOV_1,
        quantity=2_232,
        unit_price_micros=1_500,
        per_units=1,
        amount_micros=3_348_000,
        amount_cents=335,
        remainder_micros=-2_000,
    ),
    LineRecord(
        cluster_public_id="kc_events",
        cluster_name="events",
        dimension="ingress_bytes",
        segment_start=OCT_1,
        segment_end=OCT_15_NOON,
        quantity=12_345_678_901,
        unit_price_micros=80_000,
        per_units=10**9,
        amount_micros=987_654,
        amount_cents=99,
        remainder_micros=-2_346,
    ),
    LineRecord(
        cluster_public_id="kc_events",
        cluster_name="events",
        dimension="storage_byte_hours",
        segment_start=SEP_30_23H,
        segment_end=OCT_1,
        quantity=-3_600_000_000_000,
        unit_price_micros=137,
        per_units=10**9,
        amount_micros=-493_200,
        amount_cents=-49,
        remainder_micros=-3_200,
        kind="adjustment",
    ),
]

EXPECTED_JSON = {
    "id": "invc_october",
    "period_start": "2026-10-01T00:00:00Z",
    "period_end": "2026-11-01T00:00:00Z",
    "state": "open",
    "currency": "usd",
    "total_micros": 3_842_454,
    "total_cents": 385,
    "created_at": "2026-11-01T02:00:00Z",
    "finalized_at": "2026-11-01T02:00:00Z",
    "paid_at": None,
    "payment_failed_at": None,
    "lines": [
        {
            "id": "invl_one",
            "kind": "usage",
            "cluster_id": "kc_events",
            "cluster_name": "events",
            "dimension": "partition_hours",
            "segment_start": "2026-10-01T00:00:00Z",
            "segment_end": "2026-11-01T00:00:00Z",
            "quantity": 2232,
            "unit_price_micros": 1500,
            "per_units": 1,
            "amount_micros": 3348000,
            "amount_cents": 335,
            "remainder_micros": -2000,
        },
        {
            "id": "invl_two",
            "kind": "usage",
            "cluster_id": "kc_events",
            "cluster_name": "events",
            "dimension": "ingress_bytes",
            "segment_start": "2026-10-01T00:00:00Z",
            "segment_end": "2026-10-15T12:00:00Z",
            "quantity": 12345678901,
            "unit_price_micros": 80000,
            "per_units": 1000000000,
            "amount_micros": 987654,
            "amount_cents": 99,
            "remainder_micros": -2346,
        },
        {
            "id": "invl_three",
            "kind": "adjustment",
            "cluster_id": "kc_events",
            "cluster_name": "events",
            "dimension": "storage_byte_hours",
            "segment_start": "2026-09-30T23:00:00Z",
            "segment_end": "2026-10-01T00:00:00Z",
            "quantity": -3600000000000,
            "unit_price_micros": 137,
            "per_units": 1000000000,
            "amount_micros": -493200,
            "amount_cents": -49,
            "remainder_micros": -3200,
        },
    ],
}

EXPECTED_CSV = (
    "line_id,kind,cluster_id,cluster_name,dimension,segment_start,segment_end,quantity,"
    "unit_price_usd,per_units,amount_usd,billed_usd\r\n"
    "invl_one,usage,kc_events,events,partition_hours,2026-10-01T00:00:00Z,"
    "2026-11-01T00:00:00Z,2232,0.001500,1,3.348000,3.35\r\n"
    "invl_two,usage,kc_events,events,ingress_bytes,2026-10-01T00:00:00Z,"
    "2026-10-15T12:00:00Z,12345678901,0.080000,1000000000,0.987654,0.99\r\n"
    "invl_three,adjustment,kc_events,events,storage_byte_hours,2026-09-30T23:00:00Z,"
    "2026-10-01T00:00:00Z,-3600000000000,0.000137,1000000000,-0.493200,-0.49\r\n"
)


@pytest.fixture
def org():
    return make_org(owner=UserFactory(), name="Acme")


def october(org, state=InvoiceState.OPEN) -> Invoice:
    """October's invoice with the hand-worked lines, under fixed ids and times."""
    with tenant_scope(org):
        invoice = invoice_record(organization=org, year=2026, month=10, lines=LINES, state=state)
        Invoice.objects.filter(pk=invoice.pk).update(
            public_id="invc_october",
            created_at=CREATED,
            finalized_at=CREATED if state == InvoiceState.OPEN else None,
        )
        for line, public_id in zip(
            invoice.lines.order_by("position"), ["invl_one", "invl_two", "invl_three"], strict=True
        ):
            InvoiceLine.objects.filter(pk=line.pk).update(public_id=public_id)
        return Invoice.objects.get(pk=invoice.pk)


def reader(org, role=Role.BILLING):
    return session_client(add_member(org, role).user)


def base(org) -> str:
    return f"/api/v1/orgs/{org.public_id}/invoices/"


def test_an_invoice_reads_as_written_out_by_hand(org):
    october(org)

    response = reader(org).get(f"{base(org)}invc_october/")

    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    expected = json.dumps(EXPECTED_JSON, separators=(",", ":")).encode()
    assert response.content == expected


def test_the_lines_csv_reads_as_written_out_by_hand(org):
    october(org)

    response = reader(org).get(f"{base(org)}invc_october/lines.csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="sluice-2026-10-invc_october.csv"'
    )
    assert response.content == EXPECTED_CSV.encode()
    # Asked for as CSV, it is the same; an error is problem+json whatever was asked for.
    client = reader(org)
    assert client.get(f"{base(org)}invc_october/lines.csv", HTTP_ACCEPT="text/csv").content == (
        EXPECTED_CSV.encode()
    )
    missing = client.get(f"{base(org)}invc_nope/lines.csv", HTTP_ACCEPT="text/csv")
    assert missing.status_code == 404
    assert missing["Content-Type"] == "application/problem+json"
    assert missing.json()["code"] == "not_found"


def test_the_list_is_newest_month_first_without_lines_and_filters_by_state_and_month(org):
    october(org)
    with tenant_scope(org):
        invoice_record(organization=org, year=2026, month=11, lines=LINES[:1])
    client = reader(org)

    listed = client.get(base(org)).json()
    assert [(i["period_start"], i["state"]) for i in listed["results"]] == [
        ("2026-11-01T00:00:00Z", "draft"),
        ("2026-10-01T00:00:00Z", "open"),
    ]
    assert "lines" not in listed["results"][0]
    assert listed["results"][0]["total_cents"] == 335

    by_state = client.get(base(org), {"state": "open"}).json()["results"]
    assert [i["id"] for i in by_state] == ["invc_october"]
    by_month = client.get(base(org), {"period": "2026-11"}).json()["results"]
    assert [i["period_start"] for i in by_month] == ["2026-11-01T00:00:00Z"]
    assert client.get(base(org), {"period": "2026-12"}).json()["results"] == []

    one_per_page = client.get(base(org), {"limit": "1"}).json()
    assert len(one_per_page["results"]) == 1
    assert one_per_page["next"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"period": "2026-13"}, "period"),
        ({"period": "2026-1"}, "period"),
        ({"period": "October"}, "period"),
        ({"state": "pending"}, "state"),
    ],
)
def test_a_filter_that_is_not_one_is_a_validation_problem(org, query, field):
    response = reader(org).get(base(org), query)
    assert response.status_code == 400
    assert response.json()["code"] == "validation"
    assert list(response.json()["errors"]) == [field]


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (Role.OWNER, 200),
        (Role.BILLING, 200),
        (Role.ADMIN, 200),
        (Role.DEVELOPER, 403),
        (Role.VIEWER, 403),
    ],
)
def test_who_may_read_invoices(org, role, status):
    october(org)
    client = reader(org, role)
    for path in ("", "invc_october/", "invc_october/lines.csv"):
        response = client.get(base(org) + path)
        assert response.status_code == status, path
        shown = b"invc_october" in response.content or b"kc_events" in response.content
        assert shown is (status == 200)
    assert client.post(base(org), {}, format="json").status_code in (403, 405)


def test_a_draft_is_recomputed_in_place_and_a_final_invoice_is_not(org):
    with tenant_scope(org):
        draft = invoice_record(organization=org, year=2026, month=10, lines=LINES[:1])
        again = invoice_record(organization=org, year=2026, month=10, lines=LINES[1:2])
        assert again.pk == draft.pk
        assert list(again.lines.values_list("dimension", flat=True)) == ["ingress_bytes"]
        assert (again.total_micros, again.total_cents) == (987_654, 99)

        invoice_record(organization=org, year=2026, month=10, lines=LINES, state="open")
        with pytest.raises(Conflict, match="2026-10 is open: it is final"):
            invoice_record(organization=org, year=2026, month=10, lines=LINES)
        assert Invoice.objects.count() == 1


def test_one_invoice_per_organization_and_month_unless_void(org):
    with tenant_scope(org):
        invoice = invoice_record(organization=org, year=2026, month=10, lines=LINES)
        start, end = month_period(2026, 10)
        with pytest.raises(IntegrityError), transaction.atomic():
            Invoice.objects.create(organization=org, period_start=start, period_end=end)
    with tenant_scope(org):
        invoice_move(invoice=invoice, state="void", actor=SYSTEM)
        replacement = invoice_record(organization=org, year=2026, month=10, lines=LINES[:1])
        assert replacement.pk != invoice.pk
        assert Invoice.objects.count() == 2


def test_the_state_only_moves_forward_and_each_move_is_audited(org):
    paid_at = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
    with tenant_scope(org):
        invoice = invoice_record(organization=org, year=2026, month=10, lines=LINES)
        assert invoice_move(invoice=invoice, state="open", actor=SYSTEM) is True
        assert invoice_move(invoice=invoice, state="paid", actor=SYSTEM, at=paid_at) is True
        assert invoice_move(invoice=invoice, state="paid", actor=SYSTEM) is False  # a repeat
        for backwards in ("open", "draft", "void", "uncollectible"):
            with pytest.raises(Conflict):
                invoice_move(invoice=invoice, state=backwards, actor=SYSTEM)
        invoice.refresh_from_db()
        assert invoice.state == "paid"
        assert invoice.paid_at == paid_at
        assert invoice.finalized_at is not None
        moves = AuditEvent.objects.filter(target_id=invoice.public_id).order_by("created_at")
        assert [(e.action, e.before, e.after) for e in moves] == [
            ("invoice.open", {"state": "draft"}, {"state": "open"}),
            ("invoice.paid", {"state": "open"}, {"state": "paid"}),
        ]


def test_lines_are_checked_before_anything_is_stored(org):
    inconsistent = LineRecord(**{**vars(LINES[0]), "remainder_micros": 0})
    with tenant_scope(org):
        with pytest.raises(InvalidInput, match="amount_cents"):
            invoice_record(organization=org, year=2026, month=10, lines=[inconsistent])
        with pytest.raises(InvalidInput, match="draft or open"):
            invoice_record(organization=org, year=2026, month=10, lines=LINES, state="paid")
        assert not Invoice.objects.exists()


def test_months_run_from_their_first_instant_to_the_next_months():
    assert month_period(2026, 12) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert month_period(2028, 2)[1] == datetime(2028, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("amount", "places", "text"),
    [
        (0, 2, "0.00"),
        (5, 2, "0.05"),
        (-5, 2, "-0.05"),
        (123_456, 2, "1234.56"),
        (1_500, 6, "0.001500"),
        (-493_200, 6, "-0.493200"),
        (10**20 + 1, 6, "100000000000000.000001"),  # beyond a float's 53 bits, exact
    ],
)
def test_amounts_are_written_as_decimal_dollars_from_integers(amount, places, text):
    assert dollars(amount, places=places) == text


def test_a_cluster_name_a_spreadsheet_would_run_is_written_as_text(org):
    risky = LineRecord(**{**vars(LINES[0]), "cluster_name": "=HYPERLINK(1)"})
    with tenant_scope(org):
        invoice = invoice_record(organization=org, year=2026, month=10, lines=[risky])
        assert ",'=HYPERLINK(1)," in invoices.lines_csv(invoice)


def test_the_billing_tab_lists_invoices_with_their_csv(org):
    october(org)
    html = reader(org).get(f"/orgs/{org.public_id}/billing/").content.decode()
    assert "October 2026" in html
    assert "$3.85" in html
    assert f'href="{base(org)}invc_october/lines.csv"' in html


# Admin ---------------------------------------------------------------------------------------


@pytest.fixture
def operator_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_operators_read_invoices_and_their_lines_and_change_no_money(org, operator_client):
    invoice = october(org)

    listed = operator_client.get("/admin/billing/invoice/").content.decode()
    assert "invc_october" in listed
    assert "3.85" in listed
    page = operator_client.get(f"/admin/billing/invoice/{invoice.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "invl_three" in html
    assert "-493200" in html
    assert 'name="total_micros"' not in html  # shown, not editable
    assert 'name="lines-0-amount_micros"' not in html
    assert operator_client.post(f"/admin/billing/invoice/{invoice.pk}/delete/").status_code == 403


def test_operators_correct_an_account_through_the_audited_service(org, operator_client):
    with tenant_scope(org):
        account = billing_account_of(organization=org)
    url = f"/admin/billing/billingaccount/{account.pk}/change/"
    form = {
        "email": "",
        "name": "Acme Inc",
        "address_line1": "",
        "address_line2": "",
        "city": "Boston",
        "postal_code": "",
        "country": "US",
        "tax_id": "",
        "currency": "usd",
    }

    response = operator_client.post(url, form)

    assert response.status_code == 302, response.content.decode()[:2000]
    account.refresh_from_db()
    assert (account.name, account.city, account.country) == ("Acme Inc", "Boston", "US")
    with tenant_scope(org):
        event = AuditEvent.objects.get(action="billing_account.updated")
    assert event.after == {"name": "Acme Inc", "city": "Boston", "country": "US"}
    html = operator_client.get(url).content.decode()
    assert 'name="stripe_customer_id"' not in html
    assert 'name="payment_status"' not in html
