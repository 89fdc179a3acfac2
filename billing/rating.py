"""Rating: the one place where ledger hours become money.

Plain values in, plain values out; no model and no query, so an invoice, a month-to-date
preview, a replay and a benchmark all rate the same way.

- **Input**: rows of ``(cluster, dimension, hour, quantity)``, UsageHour rows (``kind``
  ``"usage"``) and UsageAdjustment rows (``"adjustment"``, signed), in any order, as iterators
  (never held: ``rate`` keeps one running total per line). The price of a row is the version
  in force, at the row's own hour, for the dimension of the tier the cluster had at that hour
  (``PriceBook`` and ``TierHistory``, built from TierPrice rows and the cluster's history by
  ``billing.selectors``).
- **Segments**: quantities are summed per (kind, cluster, dimension, price version): a price
  change, or a change of tier, inside the period starts a new segment, and so a new line.
- **The one multiplication**: ``amount = quantity * micros / per_units`` per line, in Python
  integers (no overflow, no float, never in SQL), dropping the fraction of a micro-dollar
  toward zero: floored for usage, and a negative adjustment is the exact opposite of a
  positive one of the same size. Never per hour: 1 MB-hour at 137 micro-dollars per GB-hour
  is 0.000137 micro-dollars an hour, which would round to 0 every hour of a month.
- **Cents**, once per line: half-even (an exact half cent goes to the even cent), the
  difference kept on the line as ``remainder_micros`` (between -5,000 and 5,000), so
  ``micros == cents * 10,000 + remainder_micros`` always.
- A dimension a tier does not price (Dedicated's ingress, for one) is included in the tier:
  its rows make no line.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MICROS_PER_CENT = 10_000
HOUR = timedelta(hours=1)
USAGE = "usage"
ADJUSTMENT = "adjustment"
KIND_ORDER = {USAGE: 0, ADJUSTMENT: 1}

# The ends of time, for spans open on one side.
BEGINNING = datetime.min.replace(tzinfo=UTC)
END_OF_TIME = datetime.max.replace(tzinfo=UTC)

# (cluster, dimension, hour, quantity): the shape of a ledger row as rating reads it.
LedgerRow = tuple[Hashable, str, datetime, int]


@dataclass(frozen=True)
class PriceVersion:
    """One TierPrice: ``micros`` micro-dollars per ``per_units`` base units of ``dimension``
    on ``tier``, from ``effective_from`` until the tier's next version of that dimension."""

    tier: Hashable
    dimension: str
    micros: int
    per_units: int
    effective_from: datetime


@dataclass(frozen=True)
class Span:
    """``[start, end)`` during which one cluster's rows of one dimension have one price
    (``None``: the tier does not price the dimension)."""

    start: datetime
    end: datetime
    price: PriceVersion | None

    def holds(self, hour: datetime) -> bool:
        return self.start <= hour < self.end


def amount_micros(quantity: int, micros: int, per_units: int) -> int:
    """``quantity * micros / per_units`` micro-dollars, the fraction dropped toward zero."""
    whole = abs(quantity) * micros // per_units
    return whole if quantity >= 0 else -whole


def to_cents(micros: int) -> tuple[int, int]:
    """Micro-dollars as whole cents, half-even, and what that left out (``micros`` minus
    the cents' micro-dollars): 12,345,000 is 1,234.5 cents, so 1,234 cents and 5,000 left;
    12,355,000 is 1,236 cents and -5,000. Symmetric: -12,345,000 is -1,234 cents and -5,000."""
    cents, rest = divmod(micros, MICROS_PER_CENT)
    if 2 * rest > MICROS_PER_CENT or (2 * rest == MICROS_PER_CENT and cents % 2 == 1):
        cents += 1
    return cents, micros - cents * MICROS_PER_CENT


class PriceBook:
    """Every tier's price versions per dimension: which one is in force at an hour."""

    def __init__(self, versions: Iterable[PriceVersion]):
        by_key: dict[tuple[Hashable, str], list[PriceVersion]] = {}
        for version in versions:
            by_key.setdefault((version.tier, version.dimension), []).append(version)
        self._versions = {
            key: sorted(found, key=lambda v: v.effective_from) for key, found in by_key.items()
        }
        self._starts = {
            key: [v.effective_from for v in found] for key, found in self._versions.items()
        }

    def span(self, tier: Hashable, dimension: str, hour: datetime) -> Span:
        """The version of ``tier``'s price of ``dimension`` in force at ``hour``, and for how
        long; before the first version, or for a dimension never priced, ``None``."""
        starts = self._starts.get((tier, dimension))
        if not starts:
            return Span(BEGINNING, END_OF_TIME, None)
        index = bisect_right(starts, hour)
        end = starts[index] if index < len(starts) else END_OF_TIME
        if index == 0:
            return Span(BEGINNING, end, None)
        return Span(starts[index - 1], end, self._versions[(tier, dimension)][index - 1])

    def changes_between(self, start: datetime, end: datetime) -> set[datetime]:
        """The instants inside ``(start, end)`` at which some price changes."""
        return {at for starts in self._starts.values() for at in starts if start < at < end}


class TierHistory:
    """Which tier each cluster had when: per cluster, ``(since, tier)`` changes."""

    def __init__(self, changes: Mapping[Hashable, Sequence[tuple[datetime, Hashable]]]):
        self._changes = {cluster: sorted(found) for cluster, found in changes.items()}
        self._starts = {c: [since for since, _ in found] for c, found in self._changes.items()}

    @classmethod
    def constant(cls, tiers: Mapping[Hashable, Hashable]) -> TierHistory:
        """Each cluster on one tier for all time."""
        return cls({cluster: [(BEGINNING, tier)] for cluster, tier in tiers.items()})

    @classmethod
    def merged(cls, histories: Iterable[TierHistory]) -> TierHistory:
        """One history of every cluster of ``histories`` (clusters are never in two)."""
        return cls({c: found for h in histories for c, found in h._changes.items()})

    def clusters(self) -> set[Hashable]:
        return set(self._changes)

    def changed_between(self, start: datetime, end: datetime) -> set[Hashable]:
        """The clusters whose tier changed inside ``(start, end)`` (not counting the tier a
        cluster was created with)."""
        return {
            cluster
            for cluster, starts in self._starts.items()
            if any(start < at < end for at in starts[1:])
        }

    def during(self, cluster: Hashable, hour: datetime) -> list[tuple[datetime, Hashable]]:
        """``(until, tier)`` for each tier ``cluster`` had at any moment of the hour starting
        at ``hour``, in order: one, or several when its tier changed inside the hour."""
        starts, changes = self._starts[cluster], self._changes[cluster]
        first = max(bisect_right(starts, hour) - 1, 0)
        last = bisect_left(starts, hour + HOUR)  # the changes before the hour ends
        if last <= first and not (starts and starts[first] <= hour):
            raise LookupError(f"cluster {cluster} has no tier at {hour:%Y-%m-%d %H:%M}")
        return [
            (starts[index + 1] if index + 1 < len(starts) else END_OF_TIME, changes[index][1])
            for index in range(first, max(last, first + 1))
        ]


def price_spans(prices: PriceBook, tiers: TierHistory) -> Callable[..., Span]:
    """The price of a cluster's dimension at an hour: its tier's then, as a span that holds
    while neither its tier nor that price changes. In an hour the cluster changed tier, each
    dimension is priced by the latest tier of that hour that prices it, as metering counts it
    (a Standard cluster made Dedicated at 11:40 has a cluster-hour at Standard's price and
    capacity-unit-hours at Dedicated's for the hour of 11)."""

    def span(cluster: Hashable, dimension: str, hour: datetime) -> Span:
        in_force = tiers.during(cluster, hour)
        if len(in_force) == 1:
            [(tier_end, tier)] = in_force
            price = prices.span(tier, dimension, hour)
            # Holds up to the hour in which the tier changes (an hour of two tiers is its own).
            return Span(hour, min(_hour_of(tier_end), price.end), price.price)
        for _until, tier in reversed(in_force):
            price = prices.span(tier, dimension, hour).price
            if price is not None:
                return Span(hour, hour + HOUR, price)
        return Span(hour, hour + HOUR, None)

    return span


def _hour_of(moment: datetime) -> datetime:
    if moment == END_OF_TIME:
        return moment
    return moment.replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class Line:
    """One line of an invoice: the usage (or adjustments) of one cluster's dimension at one
    price version, and what it costs; ``first_hour`` and ``last_hour`` are the earliest and
    latest hours it holds (its segment is ``[first_hour, last_hour + 1 h)``)."""

    kind: str
    cluster: Hashable
    dimension: str
    price: PriceVersion
    quantity: int
    micros: int
    cents: int
    remainder_micros: int
    first_hour: datetime
    last_hour: datetime

    @classmethod
    def priced(
        cls,
        kind: str,
        cluster: Hashable,
        dimension: str,
        price: PriceVersion,
        quantity: int,
        first_hour: datetime,
        last_hour: datetime,
    ) -> Line:
        micros = amount_micros(quantity, price.micros, price.per_units)
        cents, remainder = to_cents(micros)
        return cls(
            kind,
            cluster,
            dimension,
            price,
            quantity,
            micros,
            cents,
            remainder,
            first_hour,
            last_hour,
        )


def _segment_totals(
    rows: Iterable[LedgerRow], kind: str, span_of: Callable[..., Span], totals: dict
) -> None:
    """Add ``rows`` into ``totals`` per (kind, cluster, dimension, price version), each total
    ``[quantity, first hour, last hour]``.

    The hot loop of a month close: rows in the ledger's order (by cluster, dimension, hour)
    add into one running sum while the segment holds; any other order gives the same totals,
    a little slower, with one price lookup per cluster and dimension for as long as its span
    holds."""
    spans: dict[tuple[Hashable, str], Span] = {}
    cluster_now = dimension_now = key = None
    start = end = first = last = BEGINNING
    running = 0
    for cluster, dimension, hour, quantity in rows:
        if start <= hour < end and cluster == cluster_now and dimension == dimension_now:
            running += quantity
            if hour > last:
                last = hour
            elif hour < first:
                first = hour
            continue
        if key is not None:
            _add(totals, key, running, first, last)
        span = spans.get((cluster, dimension))
        if span is None or not span.start <= hour < span.end:
            span = spans[(cluster, dimension)] = span_of(cluster, dimension, hour)
        cluster_now, dimension_now, start, end = cluster, dimension, span.start, span.end
        key = None if span.price is None else (kind, cluster, dimension, span.price)
        running, first, last = quantity, hour, hour
    if key is not None:
        _add(totals, key, running, first, last)


def _add(totals: dict, key: tuple, quantity: int, first: datetime, last: datetime) -> None:
    found = totals.get(key)
    if found is None:
        totals[key] = [quantity, first, last]
    else:
        found[0] += quantity
        found[1] = min(found[1], first)
        found[2] = max(found[2], last)


def rate(
    usage: Iterable[LedgerRow],
    span_of: Callable[..., Span],
    adjustments: Iterable[LedgerRow] = (),
) -> list[Line]:
    """The lines of ``usage`` and ``adjustments`` at the prices ``span_of`` gives (usually
    ``price_spans(prices, tiers)``): usage lines first, then by cluster, dimension, price."""
    totals: dict[tuple[str, Hashable, str, PriceVersion], list] = {}
    _segment_totals(usage, USAGE, span_of, totals)
    _segment_totals(adjustments, ADJUSTMENT, span_of, totals)
    lines = [Line.priced(*key, *total) for key, total in totals.items()]
    lines.sort(
        key=lambda line: (
            KIND_ORDER[line.kind],
            line.cluster,
            line.dimension,
            line.price.effective_from,
            line.price.tier,
        )
    )
    return lines
