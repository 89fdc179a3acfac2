"""Usage per hour from raw samples of a monotonic counter (bytes in or out of one topic on one
broker), as Prometheus scraped them.

Exact integer arithmetic, no extrapolation (PromQL ``increase()`` extrapolates to the window's
edges, which is fine for graphs and wrong for money):

- samples are taken in time order whatever order they arrive in; duplicates collapse;
- the increase between two samples is ``later - earlier``, or ``later`` when the counter went
  down or the process restarted between them (its counter began again at zero: a restart is
  known from the process's start time, since a counter that restarted may already have passed
  its old value by the next scrape);
- an increase spanning an hour boundary is split between the hours in proportion to the time
  on each side, in integers that add up to it exactly;
- two samples further apart than ``max_gap`` are a gap: their increase is still counted (a
  counter loses nothing while nobody looks, unless it was reset meanwhile), but every hour the
  gap touches is marked incomplete instead of pretending to know how the bytes were spread;
- an hour is complete only when samples cover it from its start to its end.

A metering run computes the hours of a Window: whole hours from its start, up to an end that
may fall inside the last one.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise

HOUR = 3600


@dataclass(frozen=True, order=True)
class Sample:
    at: float  # seconds since the epoch, UTC
    value: int  # the counter's value


@dataclass
class HourUsage:
    quantity: int = 0
    complete: bool = True


@dataclass(frozen=True)
class Window:
    """Hours ``[start, end)`` by their starts (epoch seconds), computed from data up to ``end``.
    ``start`` is on an hour; ``end`` need not be (the last hour is then still going on)."""

    start: int
    end: float

    @property
    def hours(self) -> range:
        return range(self.start, math.ceil(self.end / HOUR) * HOUR, HOUR)

    def over(self, hour: int) -> bool:
        return hour + HOUR <= self.end

    @property
    def datetimes(self) -> tuple[datetime, datetime]:
        """The window's bounds as UTC datetimes, for queries on the database's records."""
        return datetime.fromtimestamp(self.start, UTC), datetime.fromtimestamp(self.end, UTC)


def hour_start(moment: datetime) -> datetime:
    """The start of the (UTC) hour a moment falls in."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hour_of(at: float) -> int:
    """The start (epoch seconds) of the hour an instant belongs to; an instant exactly on a
    boundary ends the hour before (intervals are ``(start, end]``)."""
    start = int(at // HOUR) * HOUR
    return start - HOUR if start == at else start


def ordered(samples: Iterable[Sample]) -> list[Sample]:
    """Samples in time order, one per instant (the highest value if an instant repeats with
    different values: a scrape read twice, with the later read seeing more)."""
    by_instant: dict[float, int] = {}
    for sample in samples:
        by_instant[sample.at] = max(sample.value, by_instant.get(sample.at, sample.value))
    return [Sample(at, value) for at, value in sorted(by_instant.items())]


def increase(earlier: Sample, later: Sample, *, restarted: bool = False) -> int:
    if restarted or later.value < earlier.value:
        return later.value
    return later.value - earlier.value


def hourly_usage(
    samples: Iterable[Sample],
    *,
    max_gap: float,
    starts_at_zero: bool = False,
    restarts: Sequence[float] = (),
    ongoing: bool = True,
) -> dict[int, HourUsage]:
    """Usage per hour (keyed by the hour's start) between the first and the last sample.

    ``starts_at_zero``: the series began with these samples (a new topic, a new broker): its
    first value was counted from zero, in the first sample's hour. Otherwise the first sample
    is only a baseline, and the hour it falls in is incomplete unless it lies on the boundary.
    ``restarts``: sorted instants at which the counting process started again. ``ongoing``: the
    series may go on after its last sample, so that sample's hour is incomplete; False when it
    ended there (its topic was deleted) or when the caller decides which hours are over.
    """
    series = ordered(samples)
    usage: dict[int, HourUsage] = {}
    if not series:
        return usage
    first = series[0]
    if starts_at_zero:
        usage.setdefault(hour_of(first.at), HourUsage()).quantity += first.value
    elif first.at % HOUR:  # the hour began before anyone looked
        usage.setdefault(hour_of(first.at), HourUsage()).complete = False
    for earlier, later in pairwise(series):
        restarted = _any_between(restarts, earlier.at, later.at)
        hours = _split(increase(earlier, later, restarted=restarted), earlier.at, later.at)
        gap = later.at - earlier.at > max_gap
        for hour, quantity in hours.items():
            entry = usage.setdefault(hour, HourUsage())
            entry.quantity += quantity
            entry.complete &= not gap
    last_hour = hour_of(series[-1].at)
    if ongoing and series[-1].at < last_hour + HOUR:  # the last hour is still going on
        usage.setdefault(last_hour, HourUsage()).complete = False
    return usage


def _any_between(instants: Sequence[float], start: float, end: float) -> bool:
    """Whether a sorted sequence holds an instant in ``(start, end]``."""
    index = bisect_left(instants, start)
    while index < len(instants) and instants[index] <= start:
        index += 1
    return index < len(instants) and instants[index] <= end


def _split(quantity: int, start: float, end: float) -> dict[int, int]:
    """``quantity`` spread over the hours of ``(start, end]`` by the time spent in each, in
    integers that sum to it (largest remainders first, earlier hours winning ties). Time is
    counted in whole milliseconds so that the arithmetic stays exact for any byte count."""
    last = hour_of(end)
    if end <= start or int(start // HOUR) * HOUR == last:
        return {last: quantity}
    start_ms, end_ms = round(start * 1000), round(end * 1000)
    length = end_ms - start_ms
    whole: dict[int, int] = {}
    remainders: list[tuple[int, int]] = []
    hour = int(start // HOUR) * HOUR
    while hour <= last:
        overlap = min(end_ms, (hour + HOUR) * 1000) - max(start_ms, hour * 1000)
        whole[hour], remainder = divmod(quantity * overlap, length)
        remainders.append((-remainder, hour))
        hour += HOUR
    for _, hour in sorted(remainders)[: quantity - sum(whole.values())]:
        whole[hour] += 1
    return whole
