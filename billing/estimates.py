"""The cost estimator: what a cluster of a tier would cost for a month of steady use, priced by
rating itself, so an estimate and an invoice for the same hours cannot disagree.

The month is 730 hours (365 * 24 / 12, the month the catalog's per-GB-month prices are quoted
for), from the current hour on: each hour is priced at the price in force then, so a price
version that takes effect inside the month starts a second line for its dimension, as on an
invoice.

The workload is steady: every hour writes ``ingress_mbps`` and reads ``egress_mbps`` (MB/s,
10^6 bytes), keeps the topics' ``partitions``, and holds a full retention of what is written
(``ingress * retention``, one copy, as metering bills storage) from the month's first hour: the
steady state of a cluster that has run for at least its retention. A tier that is priced by the
hour (cluster-hours, capacity-unit-hours) bills each of them. These become the ledger rows
metering would write, one per dimension and hour, and ``rating.rate`` prices them: this module
multiplies no price. A dimension the tier does not price makes no line, as on an invoice.

The workload must fit the tier at its size (its limits times the capacity units): what a
cluster could not do is refused (``tier_limit_exceeded``) rather than priced.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from clusters import catalog
from clusters.models import MB, METERED_DIMENSIONS, Dimension, Tier
from clusters.tiers import capacity_units_for, limits_of
from foundation.errors import InvalidInput

from .rating import HOUR, LedgerRow, Line, TierHistory, price_spans, rate
from .rating_inputs import price_book

HOURS_PER_MONTH = 730
SECONDS_PER_HOUR = 3600
# The ledger's cluster key for the cluster that is only imagined.
ESTIMATED_CLUSTER = "estimate"

# Bounds an input form can state (the API's and the web's); a tier's own limits at the size
# asked are checked after.
ESTIMATE_MAX_MBPS = 1_000_000
ESTIMATE_MAX_RETENTION_HOURS = max(entry["max_retention_hours"] for entry in catalog.CATALOG)
ESTIMATE_MAX_PARTITIONS = max(
    entry["max_partitions"] * entry.get("max_capacity_units", 1) for entry in catalog.CATALOG
)
ESTIMATE_MAX_CAPACITY_UNITS = max(entry.get("max_capacity_units", 1) for entry in catalog.CATALOG)


class TierLimitExceeded(InvalidInput):
    code = "tier_limit_exceeded"
    title = "The tier does not allow this"


@dataclass(frozen=True)
class Workload:
    """A cluster's steady use: MB/s in and out, hours of retention, partitions, and its size
    (capacity units, for a dedicated tier; None: the tier's minimum)."""

    ingress_mbps: Decimal
    egress_mbps: Decimal
    retention_hours: int
    partitions: int
    capacity_units: int | None = None

    @classmethod
    def of(cls, data: dict) -> Workload:
        """The workload of validated input (the API's, or the estimate form's)."""
        return cls(
            ingress_mbps=data["ingress_mbps"],
            egress_mbps=data["egress_mbps"],
            retention_hours=data["retention_hours"],
            partitions=data["partitions"],
            capacity_units=data.get("capacity_units"),
        )


@dataclass(frozen=True)
class Estimate:
    tier: Tier
    capacity_units: int
    start: datetime
    end: datetime
    lines: list[Line]

    @property
    def hours(self) -> int:
        return (self.end - self.start) // HOUR

    @property
    def total_micros(self) -> int:
        return sum(line.micros for line in self.lines)

    @property
    def total_cents(self) -> int:
        """What an invoice of these lines would charge: each line's cents, added up."""
        return sum(line.cents for line in self.lines)


def estimate(*, tier_slug: str, workload: Workload, start: datetime | None = None) -> Estimate:
    """The cost of ``workload`` on the offered tier ``tier_slug`` for the 730 hours from
    ``start`` (default: the current hour)."""
    tier = Tier.objects.filter(slug=tier_slug, offered=True).first()
    if tier is None:
        raise InvalidInput(f"Tier {tier_slug!r} is not offered", field="type")
    units = capacity_units_for(tier, workload.capacity_units)
    hourly = hourly_quantities(tier, units, workload)
    start = (start or timezone.now()).replace(minute=0, second=0, microsecond=0)
    end = start + HOURS_PER_MONTH * HOUR
    span_of = price_spans(price_book(), TierHistory.constant({ESTIMATED_CLUSTER: tier.pk}))
    lines = rate(ledger_rows(hourly, start, end), span_of)
    lines.sort(key=lambda line: METERED_DIMENSIONS.index(line.dimension))  # stable: by price
    return Estimate(tier=tier, capacity_units=units, start=start, end=end, lines=lines)


def hourly_quantities(tier: Tier, units: int, workload: Workload) -> dict[str, int]:
    """What one hour of ``workload`` meters in each dimension, in the ledger's base units,
    after checking it fits ``tier`` at ``units`` capacity units."""
    ingress = bytes_per_second(workload.ingress_mbps)
    egress = bytes_per_second(workload.egress_mbps)
    stored = ingress * workload.retention_hours * SECONDS_PER_HOUR
    limits = limits_of(tier, units)
    checks = [
        ("ingress_mbps", "ingress", ingress, limits.ingress_bytes_per_second, _mbps),
        ("egress_mbps", "egress", egress, limits.egress_bytes_per_second, _mbps),
        ("partitions", "partitions", workload.partitions, limits.max_partitions, str),
        ("retention_hours", "retention", workload.retention_hours, tier.max_retention_hours, _h),
        # Steady state holds a full retention of what is written.
        ("retention_hours", "storage (ingress x retention)", stored, limits.max_storage_bytes, _gb),
    ]
    for field, what, value, limit, shown in checks:
        if value > limit:
            raise TierLimitExceeded(
                f"The {what} asked for ({shown(value)}) is over the tier's limit at this size "
                f"({shown(limit)})",
                field=field,
            )
    return {
        Dimension.INGRESS_BYTES: ingress * SECONDS_PER_HOUR,
        Dimension.EGRESS_BYTES: egress * SECONDS_PER_HOUR,
        Dimension.STORAGE_BYTE_HOURS: stored,  # held for the whole hour
        Dimension.PARTITION_HOURS: workload.partitions,
        **time_quantities(units),
    }


def time_quantities(units: int) -> dict[str, int]:
    """What an hour of a cluster of ``units`` capacity units meters in the time dimensions
    (rating prices those its tier prices: a cluster-hour on Standard, the units on Dedicated)."""
    return {Dimension.CLUSTER_HOURS: 1, Dimension.CAPACITY_UNIT_HOURS: units}


def ledger_rows(hourly: dict[str, int], start: datetime, end: datetime) -> Iterator[LedgerRow]:
    """The ledger rows of ``hourly`` for every hour of ``[start, end)``, in the ledger's order
    (by dimension, then hour)."""
    for dimension, quantity in sorted(hourly.items()):
        hour = start
        while hour < end:
            yield (ESTIMATED_CLUSTER, dimension, hour, quantity)
            hour += HOUR


def bytes_per_second(mbps: Decimal) -> int:
    """MB/s as whole bytes per second (exact: the API takes at most six decimal places)."""
    return int(mbps * MB)


def _mbps(bytes_per_second: int) -> str:
    return f"{Decimal(bytes_per_second) / MB:f} MB/s"


def _h(hours: int) -> str:
    return f"{hours} h"


def _gb(stored_bytes: int) -> str:
    return f"{Decimal(stored_bytes) / 10**9:f} GB"
