"""Invoices and their lines: recording what rating computed for a month, moving an invoice's
state forward, and reading them back (the API, the Billing tab and the invoice page, the CSV of
the lines).

Nothing here rates: the lines arrive with their amounts (quantity, unit price, micro-dollars,
cents and remainder), and are stored as given, checked to be consistent. An invoice's totals
are the sums of its lines. Money is integers throughout: micro-dollars and cents, written as
decimal dollars only when shown.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from foundation.errors import Conflict, InvalidInput
from tenants.audit import Actor, audit_record
from tenants.models import Organization

from .models import Invoice, InvoiceLine, InvoiceLineKind, InvoiceState

MICROS_PER_CENT = 10_000


@dataclass(frozen=True)
class LineRecord:
    """One line as rating computed it; the cluster's id and name as they were then."""

    cluster_public_id: str
    cluster_name: str
    dimension: str
    segment_start: datetime
    segment_end: datetime
    quantity: int
    unit_price_micros: int
    per_units: int
    amount_micros: int
    amount_cents: int
    remainder_micros: int
    kind: str = InvoiceLineKind.USAGE
    estimated: bool = False


def month_period(year: int, month: int) -> tuple[datetime, datetime]:
    """The calendar month (UTC) as ``[start, end)``."""
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return start, end


@transaction.atomic
def invoice_record(
    *,
    organization: Organization,
    year: int,
    month: int,
    lines: Iterable[LineRecord],
    state: str = InvoiceState.DRAFT,
) -> Invoice:
    """The organization's invoice for the month, holding exactly ``lines`` (in that order).

    A draft of the month (the month-to-date preview) is recomputed in place: its lines are
    replaced. An invoice that left draft is final: recording it again is a ``Conflict``. Only
    ``draft`` or ``open`` may be recorded (a later state comes by ``invoice_move``)."""
    if state not in (InvoiceState.DRAFT, InvoiceState.OPEN):
        raise InvalidInput(f"An invoice is recorded as draft or open, not {state}", field="state")
    lines = list(lines)
    for line in lines:
        _check_line(line)
    period_start, period_end = month_period(year, month)
    invoice = (
        Invoice.objects.select_for_update()
        .filter(organization=organization, period_start=period_start)
        .exclude(state=InvoiceState.VOID)
        .first()
    )
    if invoice is None:
        invoice = Invoice(
            organization=organization, period_start=period_start, period_end=period_end
        )
    elif invoice.state != InvoiceState.DRAFT:
        raise Conflict(f"The invoice of {period_start:%Y-%m} is {invoice.state}: it is final")
    else:
        invoice.lines.all().delete()
    invoice.state = state
    invoice.estimated = any(line.estimated for line in lines)
    invoice.rated_at = timezone.now()
    invoice.total_micros = sum(line.amount_micros for line in lines)
    invoice.total_cents = sum(line.amount_cents for line in lines)
    invoice.finalized_at = timezone.now() if state == InvoiceState.OPEN else None
    invoice.save()
    InvoiceLine.objects.bulk_create(
        InvoiceLine(organization=organization, invoice=invoice, position=position, **vars(line))
        for position, line in enumerate(lines, start=1)
    )
    return invoice


def _check_line(line: LineRecord) -> None:
    if line.segment_end <= line.segment_start:
        raise InvalidInput("A line's segment ends after it starts", field="segment_end")
    if line.per_units <= 0:
        raise InvalidInput("A price is per a positive number of units", field="per_units")
    if line.amount_micros != line.amount_cents * MICROS_PER_CENT + line.remainder_micros:
        raise InvalidInput(
            "amount_micros must equal amount_cents * 10,000 + remainder_micros",
            field="amount_micros",
        )


# The timestamp each state sets, when an invoice reaches it.
_STAMPS = {InvoiceState.OPEN: "finalized_at", InvoiceState.PAID: "paid_at"}


@transaction.atomic
def invoice_move(*, invoice: Invoice, state: str, actor: Actor, at: datetime | None = None) -> bool:
    """Move the invoice forward to ``state`` (``models.INVOICE_TRANSITIONS``), audited.
    Already there: nothing happens (False). A move back or sideways is a ``Conflict``: a late
    message must not undo a later one."""
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if invoice.state == state:
        return False
    if not invoice.may_become(state):
        raise Conflict(f"An invoice that is {invoice.state} cannot become {state}")
    before = invoice.state
    invoice.state = state
    stamp = _STAMPS.get(state)
    if stamp is not None:
        setattr(invoice, stamp, at or timezone.now())
    invoice.save()
    audit_record(
        organization=invoice.organization,
        actor=actor,
        action=f"invoice.{state}",
        target=invoice,
        before={"state": before},
        after={"state": state},
    )
    return True


# Reading ------------------------------------------------------------------------------------


def invoices_of(*, organization: Organization) -> QuerySet[Invoice]:
    """Newest month first; voided invoices included (they stay on record)."""
    return Invoice.objects.filter(organization=organization).order_by("-period_start", "-id")


def invoice_of(*, organization: Organization, public_id: str) -> Invoice | None:
    """The organization's invoice with that id; ``None`` for none (another organization's
    included)."""
    return Invoice.objects.filter(organization=organization, public_id=public_id).first()


def lines_of(invoice: Invoice) -> QuerySet[InvoiceLine]:
    """The invoice's lines in the order they were recorded."""
    return invoice.lines.order_by("position")


def dollars(amount: int, *, places: int) -> str:
    """An integer number of 10^-places dollars as a decimal: ``dollars(-1_234_567, places=6)``
    is ``"-1.234567"``. Integer arithmetic only: no float, no rounding."""
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**places)
    return f"{sign}{whole}.{fraction:0{places}d}" if places else f"{sign}{whole}"


CSV_COLUMNS = (
    "line_id",
    "kind",
    "cluster_id",
    "cluster_name",
    "dimension",
    "segment_start",
    "segment_end",
    "quantity",
    "unit_price_usd",
    "per_units",
    "amount_usd",
    "billed_usd",
)


def lines_csv(invoice: Invoice) -> str:
    """The invoice's lines as CSV (RFC 4180, a header row): the unit price and the amount in
    dollars to the micro-dollar, ``billed_usd`` the line's cents as dollars (what the invoice
    total adds up)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(csv_row(line) for line in lines_of(invoice))
    return out.getvalue()


def csv_row(line: InvoiceLine) -> list:
    """One line as a CSV row of ``CSV_COLUMNS`` (the usage exports write them too)."""
    return [
        line.public_id,
        line.kind,
        line.cluster_public_id,
        csv_text(line.cluster_name),
        line.dimension,
        csv_instant(line.segment_start),
        csv_instant(line.segment_end),
        line.quantity,
        dollars(line.unit_price_micros, places=6),
        line.per_units,
        dollars(line.amount_micros, places=6),
        dollars(line.amount_cents, places=2),
    ]


def csv_filename(invoice: Invoice) -> str:
    return f"sluice-{invoice.period_start:%Y-%m}-{invoice.public_id}.csv"


def csv_instant(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def csv_text(text: str) -> str:
    # A spreadsheet runs a cell starting with one of these as a formula.
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
