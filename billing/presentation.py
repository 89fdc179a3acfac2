"""How billing's numbers read on the web pages: a cluster's usage chart (each dimension's last
24 hours as table cells and the geometry of an inline SVG bar chart, amounts in decimal units
as billed), and the Billing tab's month to date per cluster, in dollars with separators."""

from __future__ import annotations

from decimal import Decimal

from clusters.models import GB, MB, METERED_DIMENSIONS, Dimension
from clusters.presentation import plain
from foundation.text import counted

from .costs import ClusterCost
from .invoices import dollars
from .selectors import DimensionUsage

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


def usage_row(usage: DimensionUsage) -> dict:
    """One dimension's last 24 hours as table cells and the geometry of an inline SVG bar
    chart. Bars are scaled to the busiest hour; the limit is drawn too (and sets the scale)
    once usage comes within a tenth of it, where it is worth seeing."""
    buckets = usage.buckets
    peak = max((bucket.quantity for bucket in buckets), default=0)
    limit = usage.limit_per_bucket
    show_limit = bool(limit) and peak * 10 >= limit
    top = max(peak, limit) if show_limit else peak
    bars = []
    for index, bucket in enumerate(buckets):
        height = bucket.quantity * CHART_HEIGHT / top if top else 0
        if bucket.quantity > 0:
            height = max(height, 1.0)  # used, however little: visible
        amount = usage_amount(bucket.quantity, usage.unit)
        bars.append(
            {
                "x": index * BAR_STEP,
                "y": f"{CHART_HEIGHT - height:.1f}",
                "height": f"{height:.1f}",
                "complete": bucket.complete,
                "title": f"{bucket.start:%Y-%m-%d %H}:00 UTC: {amount}"
                + ("" if bucket.complete else " (not complete yet)"),
            }
        )
    return {
        "label": Dimension(usage.dimension).label,
        "total": usage_amount(sum(bucket.quantity for bucket in buckets), usage.unit),
        "peak": usage_amount(peak, usage.unit),
        "limit": usage_amount(limit, usage.unit) if limit else "",
        "peak_share": _share(peak, limit) if limit else "",
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
