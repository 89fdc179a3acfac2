"""Where each organization's spending stands this month: what its usage has cost so far, how
fast it is spending, and where that leads (``Standing``). Spend caps and budget alerts read
it after every metering run, for every organization that has one.

Nothing here prices anything: the month so far is rated by ``rating.rate`` over the
provisional ledger, as the month-to-date draft invoice is (adjustments of invoiced months
are not this month's usage and are left out).

Reading a whole month of ledger for every organization every minute would not fit (a month
of 10,000 clusters is some 30 million rows), so the month is read in two parts:

- **settled**: the hours every cell's metering has closed (below the lowest watermark, whole
  hours), summed once into a ``SpendTally`` per organization and month, kept as the rated
  lines' segments (``rate`` gives each line's quantity, first and last hour, which rate again
  to the same line), and extended by the hours closed since the last check;
- **open**: the hours since, a few per cluster, read at each check.

Rating the tally's segments together with the open hours gives the same lines as rating the
month's rows one by one. A watermark moved back (``metering.reopen``) makes the tally start
over from the month's first hour.

The **run rate** is what the latest whole hour cost (rated on its own); the **projection**
adds what that rate costs until the next check, the **forecast** extends the month so far
to the month's end at the month's average hourly cost.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.utils import timezone

from .closing import metered_through
from .models import SpendTally
from .rating import HOUR, LedgerRow, Line, Span, TierHistory, price_spans, rate
from .rating_inputs import price_book, tier_histories, usage_summed
from .services import month_start

BATCH_SIZE = 500
# How often a tally takes in the hours closed since (each batch at its own hour).
SETTLE_EVERY_HOURS = 3


@dataclass(frozen=True)
class ClusterSpend:
    month_to_date_micros: int = 0
    hourly_micros: int = 0


@dataclass(frozen=True)
class Standing:
    """One organization's month so far, at ``at``: ``month_to_date_micros`` (its usage lines,
    as the draft invoice has them), ``hourly_micros`` (the run rate: the latest whole hour's
    cost), per cluster too (by the cluster's primary key)."""

    organization_id: int
    period_start: datetime
    at: datetime
    month_to_date_micros: int
    hourly_micros: int
    clusters: dict[int, ClusterSpend] = field(default_factory=dict)

    @property
    def period_end(self) -> datetime:
        return _next_month(self.period_start)

    def projected_micros(self, seconds: float) -> int:
        """The month so far plus what the run rate adds in ``seconds`` (rounded up)."""
        return self.month_to_date_micros + _ceil_share(self.hourly_micros, seconds)

    def cluster_projected_micros(self, cluster_id: int, seconds: float) -> int:
        spend = self.clusters.get(cluster_id, ClusterSpend())
        return spend.month_to_date_micros + _ceil_share(spend.hourly_micros, seconds)

    @property
    def forecast_micros(self) -> int:
        """The month so far, extended to the month's end at its average hourly cost."""
        elapsed = max(_hours(self.period_start, self.at), 1)
        whole = _hours(self.period_start, self.period_end)
        return self.month_to_date_micros * whole // elapsed


def standings(
    organization_ids: Collection[int], *, now: datetime | None = None
) -> dict[int, Standing]:
    """The standing of each organization at ``now``, in batches of ``BATCH_SIZE`` (a constant
    number of queries per batch, whatever its ledger)."""
    now = (now or timezone.now()).astimezone(UTC)
    ids = sorted(set(organization_ids))
    prices = price_book()
    found: dict[int, Standing] = {}
    for first in range(0, len(ids), BATCH_SIZE):
        found.update(_batch(ids[first : first + BATCH_SIZE], now, prices))
    return found


def _batch(ids: list[int], now: datetime, prices) -> dict[int, Standing]:
    start = month_start(now)
    end = _next_month(start)
    current_hour = now.replace(minute=0, second=0, microsecond=0)
    closed = metered_through()
    # Settled: whole hours metering has closed, but never the latest whole hour, which the
    # run rate reads from the open rows.
    limit = min(_hour_floor(closed), current_hour - HOUR) if closed else start
    histories = tier_histories(organization_ids=ids)
    changed = _tier_changed(histories, start, end)
    boundaries = prices.changes_between(start, end)
    with transaction.atomic():
        tallies = {
            tally.organization_id: tally
            for tally in SpendTally.unscoped_all_tenants.select_for_update().filter(
                organization_id__in=ids, period_start=start
            )
        }
        # Each tally's settled hours, and the hours since it, read in one summing query per
        # distinct tally end (almost always one for the whole batch): a stretch never crosses
        # ``settle_to``, so each lies wholly on the settled or the open side of it.
        stretches: dict[tuple[datetime, datetime], list[int]] = {}
        point = _settle_point(ids[0], start, limit)  # one per batch: one summing query
        for pk in ids:
            tally = tallies.get(pk)
            settle_to = point
            through = tally.settled_through if tally else start
            if through > settle_to and (tally is None or through > limit):
                through = start  # a watermark moved back: start over
            settle_to = max(settle_to, through)
            stretches.setdefault((through, settle_to), []).append(pk)
        moved = {
            pk
            for (through, settle_to), members in stretches.items()
            if through != settle_to
            for pk in members
        }
        moved |= set(ids) - set(tallies)
        settled: dict[int, list[LedgerRow]] = {}
        open_rows: dict[int, list[LedgerRow]] = {}
        settled_to: dict[int, datetime] = {}
        for (through, settle_to), members in stretches.items():
            summed = usage_summed(
                organization_ids=members,
                start=through,
                end=now if now < end else end,
                boundaries=[*boundaries, settle_to, current_hour - HOUR, current_hour],
                hourly_clusters=changed,
            )
            for pk in members:
                settled_to[pk] = settle_to
                rows = _tally_rows(tallies.get(pk)) if through > start else []
                open_rows[pk] = []
                for row in summed[pk].rows:
                    (rows if row[2] < settle_to else open_rows[pk]).append(row)
                settled[pk] = rows
        result = {}
        writes = []
        # Rated for the whole batch at once (a cluster is one organization's; the lines are
        # sorted back to theirs): three calls of ``rate`` per batch rather than per organization.
        owner = {c: pk for pk, history in histories.items() for c in history.clusters()}
        span_of = _remembered(price_spans(prices, TierHistory.merged(histories.values())))
        moving = [row for pk in ids if pk in moved for row in settled[pk]]
        compacted = _by_owner(rate(moving, span_of), owner)
        for pk in ids:
            if pk in moved:  # compacted into one row pair per line, and kept
                settled[pk] = _line_rows(compacted.get(pk, []))
                tally = tallies.get(pk) or SpendTally(organization_id=pk, period_start=start)
                tally.settled_through = settled_to[pk]
                tally.lines = [_encode(line) for line in compacted.get(pk, [])]
                writes.append(tally)
        last = current_hour - HOUR
        month = _by_owner(
            rate((row for pk in ids for row in (*settled[pk], *open_rows[pk])), span_of), owner
        )
        hour = _by_owner(
            rate((row for pk in ids for row in open_rows[pk] if row[2] == last), span_of), owner
        )
        for pk in ids:
            result[pk] = _standing(pk, start, now, month.get(pk, []), hour.get(pk, []))
        if writes:
            SpendTally.unscoped_all_tenants.bulk_create(
                writes,
                update_conflicts=True,
                unique_fields=["organization", "period_start"],
                update_fields=["settled_through", "lines"],
            )
    return result


def _settle_point(key: int, start: datetime, limit: datetime) -> datetime:
    """Up to where a batch's tallies should hold the month: the last of its settle points
    (every ``SETTLE_EVERY_HOURS`` hours from the month's start, shifted by an hour per ``key``,
    the batch's first organization, so that about a third of the batches settle at each hour,
    not all at once) at or before ``limit``."""
    hours = max(0, int((limit - start) // HOUR))
    phase = key % SETTLE_EVERY_HOURS
    if hours < phase:
        return start
    return start + HOUR * ((hours - phase) // SETTLE_EVERY_HOURS * SETTLE_EVERY_HOURS + phase)


def _remembered(span_of):
    """``span_of`` answering from the span it last gave a cluster's dimension while the hour
    asked is in it: the batch's three ratings look each one up once, not three times."""
    spans: dict[tuple, Span] = {}

    def span(cluster, dimension: str, hour: datetime) -> Span:
        found = spans.get((cluster, dimension))
        if found is None or not found.start <= hour < found.end:
            found = spans[(cluster, dimension)] = span_of(cluster, dimension, hour)
        return found

    return span


def _by_owner(lines: list[Line], owner: dict[int, int]) -> dict[int, list[Line]]:
    found: dict[int, list[Line]] = {}
    for line in lines:
        found.setdefault(owner[line.cluster], []).append(line)
    return found


def _standing(
    pk: int, start: datetime, now: datetime, month: list[Line], hour: list[Line]
) -> Standing:
    clusters: dict[int, list[int]] = {}
    for line in month:
        clusters.setdefault(line.cluster, [0, 0])[0] += line.micros
    for line in hour:
        clusters.setdefault(line.cluster, [0, 0])[1] += line.micros
    return Standing(
        organization_id=pk,
        period_start=start,
        at=now,
        month_to_date_micros=sum(line.micros for line in month),
        hourly_micros=sum(line.micros for line in hour),
        clusters={cluster: ClusterSpend(*values) for cluster, values in clusters.items()},
    )


def _tally_rows(tally: SpendTally | None) -> list[LedgerRow]:
    if tally is None:
        return []
    rows: list[LedgerRow] = []
    for cluster, dimension, first, last, quantity in tally.lines:
        rows.append((cluster, dimension, datetime.fromisoformat(first), quantity))
        if last != first:
            rows.append((cluster, dimension, datetime.fromisoformat(last), 0))
    return rows


def _line_rows(lines: Iterable[Line]) -> list[LedgerRow]:
    """Rows that rate to exactly ``lines``: each line's quantity at its first hour, and 0 at
    its last (so the segment keeps its ends)."""
    rows: list[LedgerRow] = []
    for line in lines:
        rows.append((line.cluster, line.dimension, line.first_hour, line.quantity))
        if line.last_hour != line.first_hour:
            rows.append((line.cluster, line.dimension, line.last_hour, 0))
    return rows


def _encode(line: Line) -> list:
    return [
        line.cluster,
        line.dimension,
        line.first_hour.isoformat(),
        line.last_hour.isoformat(),
        line.quantity,
    ]


def _tier_changed(histories, start: datetime, end: datetime) -> set[int]:
    changed: set[int] = set()
    for history in histories.values():
        changed |= set(history.changed_between(start, end))
    return changed


def _hour_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _next_month(start: datetime) -> datetime:
    return (start + timedelta(days=32)).replace(day=1)


def _hours(start: datetime, end: datetime) -> int:
    return int((end - start) // HOUR)


def _ceil_share(hourly: int, seconds: float) -> int:
    """``hourly`` micro-dollars for ``seconds``, rounded up (a projection errs high)."""
    if hourly <= 0 or seconds <= 0:
        return 0
    milliseconds = int(seconds * 1000)
    return -(-hourly * milliseconds // 3_600_000)
