"""An invoice's own page (``/orgs/{org}/billing/invoices/{id}/``): what a customer expects on
an invoice, read from a month written out by hand; a draft saying it is not final; who may
read it (as the Billing tab) and that another organization's invoice is not found; the tab
linking to it; and, in a real browser, the page under the Content-Security-Policy and printed
without the navigation."""

import html
import re
from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.test import Client, override_settings

from billing import accounts
from billing.invoices import LineRecord, invoice_record
from billing.models import Invoice, InvoiceState
from billing.presentation import TO, billed_quantity, span_label
from tenants.audit import Actor
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, add_member, make_org
from tests.support.browser import RECORD_VIOLATIONS
from tests.support.clients import session_client

SYSTEM = Actor(system="tests")
OCT_1, NOV_1 = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
OCT_15_NOON = datetime(2026, 10, 15, 12, tzinfo=UTC)
SEP_30_23H = datetime(2026, 9, 30, 23, tzinfo=UTC)
FINALIZED = datetime(2026, 11, 1, 2, tzinfo=UTC)


def line(
    cluster: str,
    dimension: str,
    quantity: int,
    price: int,
    per: int,
    micros: int,
    *,
    cents: int,
    remainder: int,
    start: datetime = OCT_1,
    end: datetime = NOV_1,
    **more,
) -> LineRecord:
    """A line of October as rated (its amounts worked out by hand below)."""
    return LineRecord(
        cluster_public_id=f"kc_{cluster}",
        cluster_name=cluster,
        dimension=dimension,
        segment_start=start,
        segment_end=end,
        quantity=quantity,
        unit_price_micros=price,
        per_units=per,
        amount_micros=micros,
        amount_cents=cents,
        remainder_micros=remainder,
        **more,
    )


# October 2026, worked out by hand:
# events (Standard):
# - 744 cluster-hours at $0.75 = 558,000,000 micro-dollars = 55,800 cents;
# - 12,345,678,901 bytes written until the 15th at noon, at $0.08 per 10^9 bytes
#   = 987,654.31208 -> 987,654 micros -> 99 cents (remainder -2,346);
# - 2,232 partition-hours at $0.0015 = 3,348,000 micros -> 335 cents (half to even,
#   remainder -2,000), estimated: some of its hours lacked samples;
# - an adjustment: September's last hour stored 3,600 GB-hours too many, at $0.000137 per
#   10^9 byte-hours = -493,200 micros -> -49 cents (remainder -3,200).
#   Subtotal: 55,800 + 99 + 335 - 49 = 56,185 cents = $561.85.
# orders (Dedicated):
# - 1,608 capacity-unit-hours at $1.50 = 2,412,000,000 micros = 241,200 cents;
# - 2,118,012,345,678 bytes read at $0.02 per 10^9 bytes = 42,360,246.91356 -> 42,360,246
#   micros -> 4,236 cents (remainder 246).
#   Subtotal: 241,200 + 4,236 = 245,436 cents = $2,454.36.
# Total: 56,185 + 245,436 = 301,621 cents = $3,016.21 (3,016,202,700 micros).
GB = 10**9
# fmt: off
LINES = [
    line("events", "cluster_hours", 744, 750_000, 1, 558_000_000, cents=55_800, remainder=0),
    line(
        "events", "ingress_bytes", 12_345_678_901, 80_000, GB, 987_654,
        cents=99, remainder=-2_346, end=OCT_15_NOON,
    ),
    line(
        "events", "partition_hours", 2_232, 1_500, 1, 3_348_000,
        cents=335, remainder=-2_000, estimated=True,
    ),
    line(
        "orders", "capacity_unit_hours", 1_608, 1_500_000, 1, 2_412_000_000,
        cents=241_200, remainder=0,
    ),
    line(
        "orders", "egress_bytes", 2_118_012_345_678, 20_000, GB, 42_360_246,
        cents=4_236, remainder=246,
    ),
    line(
        "events", "storage_byte_hours", -3_600 * GB, 137, GB, -493_200,
        cents=-49, remainder=-3_200, start=SEP_30_23H, end=OCT_1, kind="adjustment",
    ),
]
# fmt: on

# The table as it reads: each cluster's heading, its lines, its subtotal; the total.
EXPECTED_TABLE = [
    ["Item", "Period (UTC)", "Quantity", "Unit price", "Amount"],
    ["Cluster events kc_events"],
    ["Cluster hours", f"1{TO}31 Oct", "744 cluster-hours", "$0.75 / cluster-hour", "$558.00"],
    [
        "Ingress (written)",
        f"1 Oct 00:00 {TO} 15 Oct 12:00",
        "12.345678901 GB",
        "$0.08 / GB",
        "$0.99",
    ],
    [
        "Partition hours estimated",
        f"1{TO}31 Oct",
        "2,232 partition-hours",
        "$0.0015 / partition-hour",
        "$3.35",
    ],
    [
        "Adjustment: Storage",
        f"30 Sep 23:00 {TO} 1 Oct 00:00",
        "-3,600 GB-hours",
        "$0.000137 / GB-hour",
        "-$0.49",
    ],
    ["Subtotal, events", "$561.85"],
    ["Cluster orders kc_orders"],
    [
        "Capacity-unit hours",
        f"1{TO}31 Oct",
        "1,608 capacity-unit-hours",
        "$1.50 / capacity-unit-hour",
        "$2,412.00",
    ],
    ["Egress (read)", f"1{TO}31 Oct", "2,118.012345678 GB", "$0.02 / GB", "$42.36"],
    ["Subtotal, orders", "$2,454.36"],
    ["Total (USD)", "$3,016.21"],
]


@pytest.fixture
def org():
    return make_org(owner=UserFactory(), name="Acme")


def october(org, state=InvoiceState.OPEN, **fields) -> Invoice:
    with tenant_scope(org):
        invoice = invoice_record(organization=org, year=2026, month=10, lines=LINES, state=state)
        Invoice.objects.filter(pk=invoice.pk).update(
            public_id="invc_october",
            finalized_at=FINALIZED if state == InvoiceState.OPEN else None,
            **fields,
        )
        return Invoice.objects.get(pk=invoice.pk)


def addressed(org) -> None:
    with tenant_scope(org):
        accounts.billing_account_update(
            organization=org,
            actor=SYSTEM,
            name="Acme GmbH",
            address_line1="Hauptstraße 1",
            address_line2="Hinterhaus",
            postal_code="10115",
            city="Berlin",
            country="DE",
            tax_id="DE123456789",
            email="payables@acme.example",
        )


def page_of(org, role=Role.BILLING, invoice_id="invc_october"):
    client = session_client(add_member(org, role).user)
    return client.get(f"/orgs/{org.public_id}/billing/invoices/{invoice_id}/")


def text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def table_rows(page: str) -> list[list[str]]:
    table = page[page.index('<table class="invoice-lines">') : page.index("</table>")]
    return [
        [text(cell) for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)
    ]


@pytest.mark.django_db
def test_an_open_invoice_reads_as_written_out_by_hand(org):
    october(org)
    addressed(org)

    response = page_of(org)

    assert response.status_code == 200
    page = response.content.decode()
    assert table_rows(page) == EXPECTED_TABLE
    plain = text(page)
    assert "From Sluice Billed to" in plain  # the seller, by default
    assert (
        "Billed to Acme GmbH Hauptstraße 1 Hinterhaus 10115 Berlin Germany "
        "Tax id: DE123456789 payables@acme.example"
    ) in plain
    assert f"Invoice invc_october Period 1{TO}31 October 2026, UTC State Open · estimated" in plain
    assert "Issued 1 November 2026" in plain
    assert "Draft" not in plain
    assert "Payment failed" not in plain
    csv = f"/api/v1/orgs/{org.public_id}/invoices/invc_october/lines.csv"
    assert f'href="{csv}" download>Download lines (CSV)</a>' in page
    assert "data-print>Print</button>" in page
    assert '<script src="/static/sluice/print.js" defer></script>' in page
    assert "<script>" not in page  # no inline script: the policy would refuse it


@pytest.mark.django_db
@override_settings(SLUICE_INVOICE_ISSUER=("Sluice Cloud Ltd.", "1 Dock Road", "London E16 1AA"))
def test_the_seller_is_whom_the_operator_configured(org):
    october(org)
    assert "From Sluice Cloud Ltd. 1 Dock Road London E16 1AA Billed to" in text(
        page_of(org).content.decode()
    )


@pytest.mark.django_db
def test_a_draft_says_it_is_the_month_to_date_and_not_final(org):
    october(org, state=InvoiceState.DRAFT)

    plain = text(page_of(org).content.decode())

    assert "Draft — month to date, recomputed; not final." in plain
    assert "State Draft · estimated Issued not yet" in plain
    assert "Total so far (USD) $3,016.21" in plain


@pytest.mark.django_db
def test_a_failed_payment_and_the_stripe_invoice_are_shown(org):
    october(
        org,
        stripe_invoice_id="in_1QxYz",
        payment_failed_at=datetime(2026, 11, 3, 9, tzinfo=UTC),
    )

    plain = text(page_of(org).content.decode())

    assert "Payment failed on 3 November 2026 (UTC)" in plain
    assert "Stripe invoice in_1QxYz" in plain


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "status"),
    [
        (Role.OWNER, 200),
        (Role.ADMIN, 200),
        (Role.BILLING, 200),
        (Role.DEVELOPER, 403),
        (Role.VIEWER, 403),
    ],
)
def test_who_may_read_the_page_is_who_may_read_the_billing_tab(org, role, status):
    october(org)
    client = session_client(add_member(org, role).user)

    tab = client.get(f"/orgs/{org.public_id}/billing/")
    page = client.get(f"/orgs/{org.public_id}/billing/invoices/invc_october/")

    assert (tab.status_code, page.status_code) == (status, status)
    assert (b"kc_events" in page.content) is (status == 200)
    assert client.post(f"/orgs/{org.public_id}/billing/invoices/invc_october/").status_code in (
        403,
        405,
    )


@pytest.mark.django_db
def test_another_organizations_invoice_is_not_found(org):
    october(org)
    other = make_org(owner=UserFactory(), name="Other")

    # The other organization's owner, naming their own organization and this invoice.
    response = page_of(other, Role.OWNER)

    assert response.status_code == 404
    assert b"kc_events" not in response.content
    assert page_of(org, invoice_id="invc_nosuch").status_code == 404


@pytest.mark.django_db
def test_the_billing_tab_links_each_invoice_to_its_page(org):
    october(org)
    client = session_client(add_member(org, Role.BILLING).user)

    tab = client.get(f"/orgs/{org.public_id}/billing/").content.decode()

    url = f"/orgs/{org.public_id}/billing/invoices/invc_october/"
    assert f'<a href="{url}">October 2026</a>' in tab
    assert f'<a href="{url}"><code>invc_october</code></a>' in tab
    assert "$3,016.21" in tab


@pytest.mark.parametrize(
    ("start", "end", "month_format", "year", "label"),
    [
        (OCT_1, NOV_1, "%B", None, f"1{TO}31 October 2026"),
        (OCT_1, NOV_1, "%b", 2026, f"1{TO}31 Oct"),
        (OCT_1, OCT_15_NOON, "%b", 2026, f"1 Oct 00:00 {TO} 15 Oct 12:00"),
        (datetime(2026, 10, 15, tzinfo=UTC), datetime(2026, 10, 16, tzinfo=UTC), "%b", 2026,
         "15 Oct"),
        (datetime(2026, 10, 15, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC), "%b", 2026,
         f"15 Oct {TO} 2 Nov"),
        (datetime(2025, 12, 31, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC), "%b", 2026,
         f"31 Dec 2025 {TO} 1 Jan"),
    ],
)  # fmt: skip
def test_a_span_reads_as_the_days_it_covers_or_to_the_minute(start, end, month_format, year, label):
    assert span_label(start, end, month_format=month_format, year=year) == label


@pytest.mark.parametrize(
    ("quantity", "dimension", "label"),
    [
        (12_345_678_901, "ingress_bytes", "12.345678901 GB"),
        (1_234 * GB, "egress_bytes", "1,234 GB"),
        (500_000, "egress_bytes", "0.0005 GB"),
        (-3_600 * GB, "storage_byte_hours", "-3,600 GB-hours"),
        (1, "cluster_hours", "1 cluster-hour"),
        (2_232, "partition_hours", "2,232 partition-hours"),
    ],
)
def test_a_quantity_reads_exactly_in_the_unit_it_is_priced_in(quantity, dimension, label):
    assert billed_quantity(quantity, dimension) == label


# Printable A4 width at 96 CSS pixels to the inch: 210 mm less the page's 12 mm margins.
A4_PRINTABLE_PX = round((210 - 2 * 12) / 25.4 * 96)


@pytest.mark.django_db(transaction=True)
def test_in_a_real_browser_the_page_keeps_the_policy_and_prints_as_a_document(
    watched_page, org, live_server, tmp_path
):
    page = watched_page  # fails the test on any console error or CSP violation
    october(org)
    addressed(org)
    login = Client()
    login.force_login(add_member(org, Role.BILLING).user)
    session = login.cookies[settings.SESSION_COOKIE_NAME].value
    url = f"{live_server.url}/orgs/{org.public_id}/billing/invoices/invc_october/"

    page.set_viewport_size({"width": 1100, "height": 900})
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": url}])
    page.add_init_script(RECORD_VIOLATIONS)
    console = []
    page.on("console", lambda message: console.append(message.text))
    # The Print button calls window.print from print.js; record the call, open no dialog.
    page.add_init_script("window.print = () => { window.__printed = true; };")

    response = page.goto(url)
    page.wait_for_load_state("networkidle")
    assert response.ok
    page.screenshot(path=tmp_path / "invoice-screen.png", full_page=True)
    assert page.is_visible("header.top")
    assert page.is_visible("nav.tabs")
    page.click("button[data-print]")
    assert page.evaluate("window.__printed === true")

    page.emulate_media(media="print")
    page.set_viewport_size({"width": A4_PRINTABLE_PX, "height": 1100})
    page.screenshot(path=tmp_path / "invoice-print.png", full_page=True)
    for hidden in ("header.top", ".org-head", "nav.tabs", ".crumbs", ".invoice-actions"):
        assert page.is_hidden(hidden), hidden
    assert page.is_visible("table.invoice-lines")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") in (
        "rgb(255, 255, 255)",
        "rgba(0, 0, 0, 0)",
    )
    # The table fits the printable width of A4 (and so of Letter, which is wider).
    overflow = page.evaluate(
        "document.querySelector('table.invoice-lines').getBoundingClientRect().right"
        " - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the lines overflow A4 by {overflow} px"
    reported = page.evaluate("window.__violations")
    refused = [text for text in console if "Content Security Policy" in text]
    assert (reported, refused) == ([], [])


@pytest.mark.django_db
def test_the_page_says_when_payments_are_not_collected(org, settings):
    october(org)
    not_collected = "Payments are not collected here: Stripe is not configured"
    settings.STRIPE_API_KEY = ""
    assert not_collected in text(page_of(org).content.decode())
    settings.STRIPE_API_KEY = "sk_test_sluice"
    assert not_collected not in text(page_of(org, role=Role.OWNER).content.decode())
