"""Property tests of the counter arithmetic behind metering (billing/deltas.py). Pure
functions: no server is involved, so none is started."""

from __future__ import annotations

import random
from typing import NamedTuple

from hypothesis import given, settings
from hypothesis import strategies as st

from billing.deltas import HOUR, HourUsage, Sample, hour_of, hourly_usage

MAX_GAP = 30.0
START = 1_790_000_000 // HOUR * HOUR  # an hour boundary in 2026


class Stream(NamedTuple):
    samples: list[Sample]
    total: int
    lost_in_gaps: int
    gap_intervals: list[tuple[float, float]]
    increments: list[tuple[float, int]]


@st.composite
def counter_streams(draw, *, gaps: bool, on_boundaries: bool = False):
    """A counter scraped every 1 to 15 s (sometimes much later, when ``gaps``), across a few
    hours, with resets (a broker restart right after a scrape: the next value is all new),
    and, inside gaps, resets that lose what came before them. Returns the samples, what the
    counter counted, what of that a reset inside a gap took before anyone saw it, and the gap
    intervals."""
    count = draw(st.integers(min_value=2, max_value=400))
    at, value = float(START), draw(st.integers(min_value=0, max_value=10**6))
    samples, total, lost_in_gaps, gap_intervals = [Sample(at, value)], 0, 0, []
    increments = []  # (instant, what the counter counted since the sample before), the truth
    next_boundary = START + HOUR
    for _ in range(count):
        step = draw(st.floats(min_value=0.5, max_value=15.0))
        is_gap = gaps and draw(st.integers(min_value=0, max_value=20)) == 0
        if is_gap:
            step = draw(st.floats(min_value=MAX_GAP + 1, max_value=2 * HOUR))
        later = at + step
        if on_boundaries and later > next_boundary:
            later = float(next_boundary)  # a scrape lands exactly on the hour
        added = draw(st.integers(min_value=0, max_value=10**12))
        # A reset shows only as a value lower than the one before: a restarted counter that
        # has already climbed past its old value looks like growth, to Prometheus and to us,
        # so the streams restart lower, as real ones do within a scrape interval.
        if value > 0 and draw(st.integers(min_value=0, max_value=15)) == 0:  # reset
            added = draw(st.integers(min_value=0, max_value=value - 1))
            # Inside a gap, the counter may have counted more before the restart wiped it.
            lost = draw(st.integers(min_value=0, max_value=10**9)) if is_gap else 0
            lost_in_gaps += lost
            total += lost + added
            value = added
        else:
            total += added
            value += added
        increments.append((later, added))
        if is_gap:
            gap_intervals.append((at, later))
        at = later
        while next_boundary <= at:
            next_boundary += HOUR
        samples.append(Sample(at, value))
    return Stream(samples, total, lost_in_gaps, gap_intervals, increments)


def shuffled_with_duplicates(samples: list[Sample], seed: int) -> list[Sample]:
    rng = random.Random(seed)  # noqa: S311 - a reproducible shuffle, not a secret
    noisy = samples + rng.sample(samples, k=len(samples) // 3)
    rng.shuffle(noisy)
    return noisy


@settings(max_examples=300, deadline=None)
@given(counter_streams(gaps=False), st.integers())
def test_without_gaps_the_total_is_exact_whatever_the_order(stream, seed):
    samples, total, lost, _, _ = stream
    assert lost == 0
    usage = hourly_usage(shuffled_with_duplicates(samples, seed), max_gap=MAX_GAP)
    assert sum(hour.quantity for hour in usage.values()) == total
    assert usage == hourly_usage(samples, max_gap=MAX_GAP)
    assert all(hour.quantity >= 0 for hour in usage.values())
    # Every hour strictly between the first and the last sample's is complete.
    first, last = hour_of(samples[0].at + 1), hour_of(samples[-1].at)
    for start, hour in usage.items():
        if first <= start < last:
            assert hour.complete, start


@settings(max_examples=300, deadline=None)
@given(counter_streams(gaps=True), st.integers())
def test_a_gap_marks_every_hour_it_touches_incomplete(stream, seed):
    samples, total, lost, gap_intervals, _ = stream
    usage = hourly_usage(shuffled_with_duplicates(samples, seed), max_gap=MAX_GAP)
    for start, end in gap_intervals:
        hour = int(start // HOUR) * HOUR
        while hour < end:
            assert not usage[hour].complete, (start, end, hour)
            hour += HOUR
    # Only what a restart inside a gap wiped is missing, and those hours say so.
    assert sum(hour.quantity for hour in usage.values()) == total - lost
    if lost:
        assert any(not hour.complete for hour in usage.values())
    assert all(hour.quantity >= 0 for hour in usage.values())


@settings(max_examples=200, deadline=None)
@given(counter_streams(gaps=False, on_boundaries=True))
def test_with_a_scrape_on_each_hour_every_complete_hour_is_exact(stream):
    usage = hourly_usage(stream.samples, max_gap=MAX_GAP)
    truth: dict[int, int] = {}  # from what the generator added, not from the samples
    for at, added in stream.increments:
        truth[hour_of(at)] = truth.get(hour_of(at), 0) + added
    for start, hour in usage.items():
        if hour.complete:
            assert hour.quantity == truth.get(start, 0), start


def test_a_restart_is_not_negative_usage_and_an_increase_is_split_at_the_hour():
    samples = [
        Sample(START + HOUR - 10, 1_000),
        Sample(START + HOUR + 10, 1_600),  # 600 over 20 s: 300 before the hour, 300 after
        Sample(START + HOUR + 20, 50),  # the broker restarted: 50 new, not -1,550
    ]
    usage = hourly_usage(samples, max_gap=MAX_GAP)
    assert usage[START].quantity == 300
    assert usage[START + HOUR] == HourUsage(quantity=350, complete=False)  # still going on
    assert not usage[START].complete  # nobody looked before START + HOUR - 10


def test_a_new_series_counts_from_zero():
    usage = hourly_usage(
        [Sample(START + 5, 700), Sample(START + 10, 900)], max_gap=MAX_GAP, starts_at_zero=True
    )
    assert usage[START].quantity == 900
