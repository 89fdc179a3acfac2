"""How billing's numbers read on the web pages: a cluster's usage chart (each dimension's last
24 hours as table cells and the geometry of an inline SVG bar chart, amounts in decimal units
as billed), the Billing tab's month to date per cluster, in dollars with separators, and an
invoice as its page shows it (lines grouped by cluster, quantities in the unit they are priced
in, exactly), and a cluster's tier recommendation."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings

from clusters import presentation as cluster_presentation
from clusters.models import GB, MB, METERED_DIMENSIONS, Dimension
from clusters.presentation import plain
from foundation.text import counted

from .costs import ClusterCost
from .estimates import Estimate
from .invoices import dollars
from .models import Invoice, InvoiceLine, InvoiceLineKind
from .recommendation import Option, Recommendation, Verdict
from .selectors import UNITS, DimensionUsage, UsageBucket

# The usage chart on a cluster's page: one bar per hour of the last 24.
CHART_HEIGHT = 40
BAR_STEP, BAR_WIDTH = 10, 8

# Units that are counts of hours, and how one of them reads.
COUNTED_HOURS = {
    "partition-hours": "partition-hour",
    "cluster-hours": "cluster-hour",
    "capacity-unit-hours": "capacity-unit-hour",
}


def usage_amount(quantity: int, unit: str) -> str:
    """e.g. "1.5 GB", "1.08 TB", "360 GB-hours", "48 partition-hours", "96 capacity-unit-hours":
    decimal units, as billed, to three significant digits; counts of hours as they are."""
    if unit in COUNTED_HOURS:
        return counted(quantity, COUNTED_HOURS[unit])
    suffix = "-hours" if unit == "byte-hours" else ""
    for size, name in ((10**15, "PB"), (10**12, "TB"), (GB, "GB"), (MB, "MB"), (10**3, "kB")):
        if quantity >= size:
            value = Decimal(quantity) / size
            places = 0 if value >= 100 else 1 if value >= 10 else 2
            return f"{plain(round(value, places))} {name}{suffix}"
    return f"{quantity:,} B{suffix}"


def _share(part: int, whole: int) -> str:
    percent = Decimal(part * 100) / whole
    if part and percent < Decimal("0.1"):
        return "< 0.1%"
    return f"{plain(round(percent, 1))}%"


NOT_MEASURED = "not measured"


def not_measured(bucket: UsageBucket) -> bool:
    """An hour still open with nothing recorded: not measured (yet), which is not zero."""
    return not bucket.complete and not bucket.recorded


def usage_row(usage: DimensionUsage) -> dict:
    """One dimension's last 24 hours as table cells and the geometry of an inline SVG bar
    chart. Bars are scaled to the busiest hour; the limit is drawn too (and sets the scale)
    once usage comes within a tenth of it, where it is worth seeing. Hours not measured read
    so, never as zero; a dimension with no hour measured has no total and no busiest hour."""
    buckets = usage.buckets
    # Hours before the cluster existed are neither measured nor missing.
    measured = [bucket for bucket in buckets if bucket.recorded]
    missing = sum(1 for bucket in buckets if not_measured(bucket))
    peak = max((bucket.quantity for bucket in measured), default=0)
    limit = usage.limit_per_bucket
    show_limit = bool(limit) and peak * 10 >= limit
    top = max(peak, limit) if show_limit else peak
    bars = []
    for index, bucket in enumerate(buckets):
        height = bucket.quantity * CHART_HEIGHT / top if top else 0
        if bucket.quantity > 0:
            height = max(height, 1.0)  # used, however little: visible
        if not_measured(bucket):
            reading = NOT_MEASURED
        elif not bucket.recorded:
            reading = "nothing to measure"  # the cluster did not exist yet
        else:
            reading = usage_amount(bucket.quantity, usage.unit)
            reading += "" if bucket.complete else " (not complete yet)"
        bars.append(
            {
                "x": index * BAR_STEP,
                "y": f"{CHART_HEIGHT - height:.1f}",
                "height": f"{height:.1f}",
                "complete": bucket.complete,
                "measured": not not_measured(bucket),
                "title": f"{bucket.start:%Y-%m-%d %H}:00 UTC: {reading}",
            }
        )
    total = usage_amount(sum(bucket.quantity for bucket in measured), usage.unit)
    return {
        "label": Dimension(usage.dimension).label,
        "measured": bool(measured),
        "total": total if measured else NOT_MEASURED,
        "peak": usage_amount(peak, usage.unit) if measured else NOT_MEASURED,
        "not_measured": f"{counted(missing, 'hour')} {NOT_MEASURED}"
        if measured and missing
        else "",
        "limit": usage_amount(limit, usage.unit) if limit else "",
        "peak_share": _share(peak, limit) if limit and measured else "",
        "bars": bars,
        "width": len(buckets) * BAR_STEP - (BAR_STEP - BAR_WIDTH),
        "height": CHART_HEIGHT,
        "bar_width": BAR_WIDTH,
        "limit_y": f"{CHART_HEIGHT - limit * CHART_HEIGHT / top:.1f}" if show_limit else "",
    }


def usd(cents: int) -> str:
    """Cents as dollars with thousands separators: ``usd(123_456_789)`` is ``"$1,234,567.89"``,
    ``usd(-5)`` is ``"-$0.05"``. Integer arithmetic only."""
    sign, whole_and_cents = ("-" if cents < 0 else ""), dollars(abs(cents), places=2)
    whole, fraction = whole_and_cents.split(".")
    return f"{sign}${int(whole):,}.{fraction}"


def month_to_date_table(costs: list[ClusterCost]) -> dict:
    """The month so far as a table: a row per cluster, a column per dimension that any of them
    was charged for (in the ledger's order), each cell the dimension's cents (as its invoice
    lines will have them), marked when some of its hours lacked samples (estimated)."""
    charged = {row.dimension for cost in costs for row in cost.rows}
    dimensions = [d for d in METERED_DIMENSIONS if d in charged]
    rows = []
    for cost in costs:
        cents, estimated = cost.cents_by_dimension(), cost.estimated_dimensions()
        rows.append(
            {
                "cluster_id": cost.cluster_public_id,
                "cluster_name": cost.cluster_name,
                "total": usd(cost.amount_cents),
                "estimated": cost.estimated,
                "cells": [
                    {
                        "amount": usd(cents[d]) if d in cents else "",
                        "estimated": d in estimated,
                    }
                    for d in dimensions
                ],
            }
        )
    return {
        "columns": [Dimension(d).label for d in dimensions],
        "rows": rows,
        "total_cents": sum(cost.amount_cents for cost in costs),
        "total": usd(sum(cost.amount_cents for cost in costs)),
        "estimated": any(cost.estimated for cost in costs),
    }


# An invoice ----------------------------------------------------------------------------------

TO = "\N{EN DASH}"  # between the ends of a range of dates


def billed_quantity(quantity: int, dimension: str) -> str:
    """A line's quantity exactly, bytes in (decimal) GB as they are priced: "12.345678901 GB",
    "-3,600 GB-hours", "2,232 partition-hours". Not rounded as ``usage_amount`` rounds for a
    chart: on an invoice, the quantity times the unit price must give the amount."""
    unit = UNITS[dimension]
    if unit in COUNTED_HOURS:
        return counted(quantity, COUNTED_HOURS[unit])
    text = f"{Decimal(quantity) / GB:,f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} GB{'-hours' if unit == 'byte-hours' else ''}"


def span_label(start: datetime, end: datetime, *, month_format: str, year: int | None) -> str:
    """``[start, end)`` in UTC: whole days as the days they cover ("1{TO}31 October 2026",
    "15 Oct"), anything else to the minute ("30 Sep 23:00 {TO} 1 Oct 00:00"), with an en dash
    for {TO}. A date's year is written unless it is ``year``."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)

    def on(moment: datetime) -> str:
        text = f"{moment.day} {moment.strftime(month_format)}"
        return text if moment.year == year else f"{text} {moment.year}"

    if start.time() != time(0) or end.time() != time(0):
        return f"{on(start)} {start:%H:%M} {TO} {on(end)} {end:%H:%M}"
    last = end - timedelta(days=1)
    if last.date() == start.date():
        return on(start)
    if (last.year, last.month) == (start.year, start.month):
        return f"{start.day}{TO}{on(last)}"
    if last.year == start.year:
        return f"{start.day} {start.strftime(month_format)} {TO} {on(last)}"
    return f"{on(start)} {TO} {on(last)}"


def _signed(text: str, amount: int, *, adjustment: bool) -> str:
    # An adjustment says which way it goes; a negative amount already does.
    return f"+{text}" if adjustment and amount > 0 else text


def invoice_line_row(line: InvoiceLine, *, year: int) -> dict:
    adjustment = line.kind == InvoiceLineKind.ADJUSTMENT
    unit = cluster_presentation.price_unit(line.dimension, line.per_units)
    return {
        "line_id": line.public_id,
        "dimension": Dimension(line.dimension).label,
        "adjustment": adjustment,
        "segment": span_label(line.segment_start, line.segment_end, month_format="%b", year=year),
        "quantity": _signed(
            billed_quantity(line.quantity, line.dimension), line.quantity, adjustment=adjustment
        ),
        "unit_price": f"{cluster_presentation.usd(line.unit_price_micros)} / {unit}",
        "amount": _signed(usd(line.amount_cents), line.amount_cents, adjustment=adjustment),
        "estimated": line.estimated,
    }


def invoice_page(invoice: Invoice, lines: Iterable[InvoiceLine]) -> dict:
    """The invoice as its page shows it: the seller (``SLUICE_INVOICE_ISSUER``), the period,
    and the lines grouped by cluster as billed (in the order first billed), each group with
    its subtotal and each amount the line's cents, which the total adds up."""
    year = invoice.period_start.astimezone(UTC).year
    clusters: dict[str, dict] = {}
    for line in lines:
        group = clusters.setdefault(
            line.cluster_public_id,
            {"cluster_id": line.cluster_public_id, "cluster_name": line.cluster_name, "rows": []},
        )
        group["rows"].append(invoice_line_row(line, year=year))
        group["cents"] = group.get("cents", 0) + line.amount_cents
    for group in clusters.values():
        group["subtotal"] = usd(group.pop("cents"))
    issuer = settings.SLUICE_INVOICE_ISSUER
    return {
        "issuer": {"name": issuer[0], "address": issuer[1:]},
        "period": span_label(
            invoice.period_start, invoice.period_end, month_format="%B", year=None
        ),
        "clusters": list(clusters.values()),
        "total": usd(invoice.total_cents),
    }


def estimate_table(estimate: Estimate) -> dict:
    """An estimate as the cluster forms show it: a row per line (the dimension, the month's
    quantity as billed, its cents) and the total, in dollars."""
    return {
        "rows": [
            {
                "dimension": Dimension(line.dimension).label,
                "quantity": billed_quantity(line.quantity, line.dimension),
                "amount": usd(line.cents),
            }
            for line in estimate.lines
        ],
        "total": usd(estimate.total_cents),
        "tier": estimate.tier.name,
        "capacity_units": estimate.capacity_units,
        "hours": estimate.hours,
    }


# A tier recommendation -----------------------------------------------------------------------


def option_label(option: Option) -> str:
    """How an option reads: "Serverless", "Dedicated, 3 capacity units"."""
    if not option.tier.is_dedicated:
        return option.tier.name
    return f"{option.tier.name}, {counted(option.capacity_units, 'capacity unit')}"


def recommendation_panel(recommendation: Recommendation) -> dict:
    """The recommendation as the cluster page shows it: the verdict in a sentence, the busiest
    hour, and each tier's month in dollars with separators (or why it does not fit)."""
    panel = {
        "verdict": str(recommendation.verdict),
        "complete_hours": f"{recommendation.complete_hours:,}",
        "required_hours": f"{recommendation.required_hours:,}",
        "headroom": f"{recommendation.headroom_percent}%",
    }
    if recommendation.verdict == Verdict.NOT_ENOUGH_HISTORY:
        return panel
    peaks, current, cheapest = recommendation.peaks, recommendation.current, recommendation.cheapest
    rows = [
        {"tier": option_label(option), "monthly": usd(option.monthly_cents), "fits": True}
        for option in recommendation.options
    ]
    rows += [
        {"tier": unfit.tier.name, "over": ", ".join(unfit.over), "fits": False}
        for unfit in recommendation.unfit
    ]
    return panel | {
        "days": plain(round(Decimal(recommendation.hours) / 24, 1)),
        "current": option_label(current),
        "current_monthly": usd(current.monthly_cents),
        "recommended": option_label(cheapest) if cheapest else "",
        "recommended_monthly": usd(cheapest.monthly_cents) if cheapest else "",
        "saving": usd(recommendation.monthly_saving_cents),
        "peaks": [
            f"{plain(peaks.ingress_mbps)} MB/s in",
            f"{plain(peaks.egress_mbps)} MB/s out",
            counted(peaks.partitions, "partition"),
            f"{usage_amount(peaks.storage_bytes, 'bytes')} stored",
        ],
        "rows": rows,
    }
