"""Rating (billing/rating.py): ledger hours into money. Pure functions over plain values: no
server is involved, so none is started. The database side (the price book, the streamed
ledger rows) is in test_rating_inputs.py.

Examples state their amounts worked out by hand; the properties hold rating to an independent
reference in ``fractions.Fraction`` and to the relations between a month and its days."""

from __future__ import annotations

import math
import tracemalloc
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.rating import (
    ADJUSTMENT,
    BEGINNING,
    USAGE,
    PriceBook,
    PriceVersion,
    TierHistory,
    amount_micros,
    price_spans,
    rate,
    to_cents,
)

HOUR = timedelta(hours=1)
GB = 10**9
MB = 10**6
TB = 10**12
OCTOBER = datetime(2026, 10, 1, tzinfo=UTC)  # 31 days: 744 hours
NOVEMBER = datetime(2026, 11, 1, tzinfo=UTC)  # 30 days: 720 hours
SINCE_JANUARY = datetime(2026, 1, 1, tzinfo=UTC)
BIGINT_MAX = 2**63 - 1

STORAGE = "storage_byte_hours"
INGRESS = "ingress_bytes"
CLUSTER_HOURS = "cluster_hours"
PARTITION_HOURS = "partition_hours"


def version(tier, dimension, micros, per_units=1, since=SINCE_JANUARY):
    return PriceVersion(tier, dimension, micros, per_units, since)


def rated(rows, versions, tiers=None, adjustments=()):
    """Rate ``rows`` with every cluster on the tier "serverless" unless ``tiers`` says."""
    clusters = {row[0] for row in [*rows, *adjustments]}
    history = tiers or TierHistory.constant(dict.fromkeys(clusters, "serverless"))
    return rate(iter(rows), price_spans(PriceBook(versions), history), iter(adjustments))


def hours(start, count):
    return [start + offset * HOUR for offset in range(count)]


# Hand-worked examples -------------------------------------------------------------------------


def test_one_megabyte_stored_for_a_month_costs_what_the_month_adds_up_to():
    # 137 micro-dollars per GB-hour; 1 MB for one hour is 10^6 x 137 / 10^9 = 0.137 micro-
    # dollars, 0 if rounded every hour. For the 744 hours of October it is 744 x 10^6 byte-
    # hours, 744,000,000 x 137 / 10^9 = 101.928 micro-dollars: 101 on the line.
    storage = version("serverless", STORAGE, 137, GB)
    rows = [(1, STORAGE, hour, MB) for hour in hours(OCTOBER, 744)]

    [line] = rated(rows, [storage])

    assert (line.kind, line.cluster, line.dimension, line.price) == (USAGE, 1, STORAGE, storage)
    assert line.quantity == 744_000_000
    assert line.micros == 101
    assert (line.cents, line.remainder_micros) == (0, 101)
    assert amount_micros(MB, 137, GB) == 0  # what rounding per hour would have billed


def test_a_price_change_on_the_fifteenth_splits_the_month_into_two_lines():
    # A Standard cluster all of November: $0.75 an hour until 2026-11-15 00:00, then $0.80.
    # 1-14 November is 14 x 24 = 336 hours x 750,000 = 252,000,000 micro-dollars ($252.00);
    # 15-30 November is 16 x 24 = 384 hours x 800,000 = 307,200,000 ($307.20).
    before = version("standard", CLUSTER_HOURS, 750_000)
    after = version("standard", CLUSTER_HOURS, 800_000, since=datetime(2026, 11, 15, tzinfo=UTC))
    rows = [(7, CLUSTER_HOURS, hour, 1) for hour in hours(NOVEMBER, 720)]
    rows.reverse()  # order does not matter

    first, second = rated(rows, [after, before], TierHistory.constant({7: "standard"}))

    assert (first.price, first.quantity, first.micros, first.cents) == (
        before,
        336,
        252_000_000,
        25_200,
    )
    assert (second.price, second.quantity, second.micros, second.cents) == (
        after,
        384,
        307_200_000,
        30_720,
    )
    assert first.remainder_micros == second.remainder_micros == 0


def test_a_hundred_terabytes_for_a_month_is_exact_where_sql_bigint_overflows():
    # 100 TB = 10^14 bytes for each of October's 744 hours: 7.44 x 10^16 byte-hours (a
    # bigint holds it), times 137 is 1.01928 x 10^19, past a bigint's 9.22 x 10^18. In Python
    # integers: 74,400,000,000,000,000 x 137 / 10^9 = 10,192,800,000 micro-dollars exactly,
    # $10,192.80.
    storage = version("serverless", STORAGE, 137, GB)
    rows = [(1, STORAGE, hour, 100 * TB) for hour in hours(OCTOBER, 744)]

    [line] = rated(rows, [storage])

    assert line.quantity == 74_400_000_000_000_000 <= BIGINT_MAX
    assert line.quantity * 137 > BIGINT_MAX
    assert line.micros == 10_192_800_000
    assert (line.cents, line.remainder_micros) == (1_019_280, 0)


@pytest.mark.parametrize(
    ("micros", "cents", "remainder"),
    [
        # 12,345,000 micro-dollars is 1,234.5 cents: an exact half goes to the even cent.
        (12_345_000, 1_234, 5_000),
        (12_355_000, 1_236, -5_000),
        # Anything off the half goes to the nearer cent.
        (12_345_001, 1_235, -4_999),
        (12_344_999, 1_234, 4_999),
        (101, 0, 101),
        (5_000, 0, 5_000),
        (15_000, 2, -5_000),
        (0, 0, 0),
        # Negative (a credit) mirrors positive.
        (-12_345_000, -1_234, -5_000),
        (-12_355_000, -1_236, 5_000),
        (-15_000, -2, 5_000),
    ],
)
def test_cents_are_half_even_and_the_remainder_stays_on_the_line(micros, cents, remainder):
    assert to_cents(micros) == (cents, remainder)


def test_a_line_of_exactly_half_a_cent_past_a_whole_cent():
    # 12,345 partition-hours at 1,000 micro-dollars: 12,345,000 micro-dollars, $12.345.
    partitions = version("serverless", PARTITION_HOURS, 1_000)
    rows = [(1, PARTITION_HOURS, OCTOBER, 12_000), (1, PARTITION_HOURS, OCTOBER + HOUR, 345)]

    [line] = rated(rows, [partitions])

    assert (line.quantity, line.micros, line.cents, line.remainder_micros) == (
        12_345,
        12_345_000,
        1_234,
        5_000,
    )


def test_adjustments_are_lines_of_their_own_at_the_price_of_their_hour():
    # Rated in December at $0.08 per GB, the November adjustments keep November's prices:
    # +3 GB ingress on 14 November at $0.10 per GB is 300,000 micro-dollars (30 cents),
    # -2 GB on 20 November at $0.08 is -160,000 (-16 cents); December's 5 GB of usage is
    # 400,000 (40 cents).
    before = version("serverless", INGRESS, 100_000, GB)
    after = version("serverless", INGRESS, 80_000, GB, since=datetime(2026, 11, 15, tzinfo=UTC))
    december = datetime(2026, 12, 1, tzinfo=UTC)
    usage = [(1, INGRESS, december, 5 * GB)]
    adjustments = [
        (1, INGRESS, datetime(2026, 11, 20, 3, tzinfo=UTC), -2 * GB),
        (1, INGRESS, datetime(2026, 11, 14, 9, tzinfo=UTC), 3 * GB),
    ]

    lines = rated(usage, [before, after], adjustments=adjustments)

    assert [(line.kind, line.price, line.quantity, line.micros, line.cents) for line in lines] == [
        (USAGE, after, 5 * GB, 400_000, 40),
        (ADJUSTMENT, before, 3 * GB, 300_000, 30),
        (ADJUSTMENT, after, -2 * GB, -160_000, -16),
    ]


def test_a_credit_is_the_exact_opposite_of_a_charge_of_the_same_size():
    # -1 MB-hour at 137 per GB-hour is -0.137 micro-dollars: 0, like +1 MB-hour, not -1 (a
    # credit never gives back more than the same usage costs).
    storage = version("serverless", STORAGE, 137, GB)
    [credit] = rated([], [storage], adjustments=[(1, STORAGE, OCTOBER, -MB)])
    assert (credit.quantity, credit.micros, credit.cents) == (-MB, 0, 0)
    assert amount_micros(-10 * MB, 137, GB) == -1  # -1.37
    assert amount_micros(10 * MB, 137, GB) == 1


def test_a_change_of_tier_starts_a_segment_at_the_new_tier_price():
    # Serverless (partition-hours at 1,500) until 10:00, Standard (1,000) from then: 10 hours
    # of 4 partitions at each: 40 x 1,500 = 60,000 and 40 x 1,000 = 40,000.
    moved = OCTOBER + 10 * HOUR
    tiers = TierHistory({3: [(BEGINNING, "serverless"), (moved, "standard")]})
    prices = [
        version("serverless", PARTITION_HOURS, 1_500),
        version("standard", PARTITION_HOURS, 1_000),
    ]
    rows = [(3, PARTITION_HOURS, hour, 4) for hour in hours(OCTOBER, 20)]

    lines = rated(rows, prices, tiers)

    assert [(line.price.tier, line.quantity, line.micros) for line in lines] == [
        ("serverless", 40, 60_000),
        ("standard", 40, 40_000),
    ]


def test_a_dimension_the_tier_does_not_price_makes_no_line():
    # Dedicated prices no ingress (it is in the capacity units) and nothing before its first
    # price version.
    egress = version("dedicated", "egress_bytes", 20_000, GB, since=OCTOBER + HOUR)
    rows = [
        (5, INGRESS, OCTOBER, 7 * GB),
        (5, "egress_bytes", OCTOBER, 1 * GB),
        (5, "egress_bytes", OCTOBER + HOUR, 2 * GB),
    ]

    [line] = rated(rows, [egress], TierHistory.constant({5: "dedicated"}))

    assert (line.dimension, line.quantity, line.micros) == ("egress_bytes", 2 * GB, 40_000)


def test_an_hour_before_a_cluster_has_a_tier_is_an_error_not_free():
    tiers = TierHistory({1: [(NOVEMBER, "serverless")]})
    with pytest.raises(LookupError, match="no tier"):
        rated([(1, INGRESS, OCTOBER, GB)], [version("serverless", INGRESS, 1, GB)], tiers)


def test_rating_streams_its_rows_without_holding_them():
    # 500,000 rows made one at a time (a month of 672 hours for 744 cluster-dimensions): what
    # rating holds is one total per line, so its peak stays far below what the rows would take
    # (a tuple and a datetime each, over 100 bytes a row: 50 MB).
    partitions = version("serverless", PARTITION_HOURS, 1_500)
    clusters = 744

    def rows():
        for cluster in range(clusters):
            for offset in range(672):
                yield cluster, PARTITION_HOURS, OCTOBER + offset * HOUR, 3

    tiers = TierHistory.constant(dict.fromkeys(range(clusters), "serverless"))
    tracemalloc.start()
    try:
        lines = rate(rows(), price_spans(PriceBook([partitions]), tiers))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert len(lines) == clusters
    assert {(line.quantity, line.micros) for line in lines} == {(2_016, 3_024_000)}
    assert peak < 2_000_000


# Properties -----------------------------------------------------------------------------------

TIERS = ("serverless", "standard")
DIMENSIONS = (INGRESS, STORAGE, PARTITION_HOURS)
MONTH_HOURS = 31 * 24


@st.composite
def price_books(draw):
    """1 to 3 versions per tier and dimension (some missing), with prices and units from
    whole to odd, effective on hours inside the month (or before it)."""
    versions = []
    for tier in TIERS:
        for dimension in DIMENSIONS:
            offsets = draw(st.sets(st.integers(-24, MONTH_HOURS - 1), max_size=3))
            for offset in offsets:
                versions.append(
                    version(
                        tier,
                        dimension,
                        draw(st.integers(0, 10**7)),
                        draw(st.sampled_from([1, 1_000, MB, GB]) | st.integers(1, 10**10)),
                        since=OCTOBER + offset * HOUR,
                    )
                )
    return versions


@st.composite
def tier_histories(draw, clusters):
    changes = {}
    for cluster in clusters:
        moves = draw(st.lists(st.integers(1, MONTH_HOURS - 1), max_size=2, unique=True))
        tiers = draw(st.lists(st.sampled_from(TIERS), min_size=len(moves) + 1))
        starts = [BEGINNING, *(OCTOBER + move * HOUR for move in sorted(moves))]
        changes[cluster] = list(zip(starts, tiers, strict=False))
    return changes


@st.composite
def ledger_rows(draw, *, signed=False):
    """Scattered hours, and runs of consecutive hours (a cluster using a dimension steadily for
    up to nine days), so that days, price changes and tier changes fall inside segments."""
    quantities = (st.integers(-(10**15), 10**15) if signed else st.integers(0, 10**15)) | (
        st.sampled_from([0, 1, MB])
    )
    clusters, dimensions = st.integers(1, 3), st.sampled_from(DIMENSIONS)
    offsets = st.integers(0, MONTH_HOURS - 1)
    rows = draw(st.lists(st.tuples(clusters, dimensions, offsets, quantities), max_size=60))
    runs = draw(
        st.lists(
            st.tuples(clusters, dimensions, offsets, st.integers(1, 9 * 24), quantities),
            max_size=4,
        )
    )
    for cluster, dimension, start, length, quantity in runs:
        rows += [
            (cluster, dimension, offset, quantity)
            for offset in range(start, min(start + length, MONTH_HOURS))
        ]
    return [(c, d, OCTOBER + offset * HOUR, q) for c, d, offset, q in rows]


@st.composite
def months(draw, *, signed=False):
    rows = draw(ledger_rows(signed=signed))
    adjustments = draw(ledger_rows(signed=True))
    history = draw(tier_histories((1, 2, 3)))
    return draw(price_books()), TierHistory(history), history, rows, adjustments


def reference_lines(versions, history, rows, adjustments):
    """What each line should be, by another route: each row's price found by scanning every
    version, the amount an exact fraction summed row by row and truncated once toward zero,
    cents by Python's own round-half-even of a Fraction."""

    def price_at(cluster, dimension, hour):
        tier = [tier for since, tier in history[cluster] if since <= hour][-1]
        in_force = [
            v
            for v in versions
            if (v.tier, v.dimension) == (tier, dimension) and v.effective_from <= hour
        ]
        return max(in_force, key=lambda v: v.effective_from, default=None)

    quantities, amounts = defaultdict(int), defaultdict(Fraction)
    for kind, found in ((USAGE, rows), (ADJUSTMENT, adjustments)):
        for cluster, dimension, hour, quantity in found:
            price = price_at(cluster, dimension, hour)
            if price is not None:
                key = (kind, cluster, dimension, price)
                quantities[key] += quantity
                amounts[key] += Fraction(quantity * price.micros, price.per_units)
    expected = {}
    for key, quantity in quantities.items():
        micros = math.trunc(amounts[key])
        cents = round(Fraction(micros, 10_000))
        expected[key] = (quantity, micros, cents, micros - cents * 10_000)
    return expected


def by_segment(lines):
    return {
        (line.kind, line.cluster, line.dimension, line.price): (
            line.quantity,
            line.micros,
            line.cents,
            line.remainder_micros,
        )
        for line in lines
    }


@settings(max_examples=300, deadline=None)
@given(months(signed=False))
def test_rating_is_exact_against_fractions(month):
    versions, tiers, history, rows, adjustments = month
    lines = rate(iter(rows), price_spans(PriceBook(versions), tiers), iter(adjustments))

    assert len(lines) == len(by_segment(lines))  # one line per segment
    assert by_segment(lines) == reference_lines(versions, history, rows, adjustments)
    for line in lines:
        assert line.micros == line.cents * 10_000 + line.remainder_micros
        assert -5_000 <= line.remainder_micros <= 5_000


@settings(max_examples=200, deadline=None)
@given(months(signed=False), st.randoms(use_true_random=False))
def test_rating_does_not_depend_on_the_order_of_hours(month, shuffler):
    versions, tiers, _, rows, adjustments = month
    spans = price_spans(PriceBook(versions), tiers)
    shuffled_rows, shuffled_adjustments = rows[:], adjustments[:]
    shuffler.shuffle(shuffled_rows)
    shuffler.shuffle(shuffled_adjustments)

    expected = rate(rows, spans, adjustments)
    assert rate(shuffled_rows, spans, shuffled_adjustments) == expected
    assert rate(sorted(rows), spans, sorted(adjustments)) == expected  # the ledger's order


@settings(max_examples=200, deadline=None)
@given(months(signed=False))
def test_non_negative_usage_never_costs_less_than_nothing(month):
    versions, tiers, _, rows, _ = month
    for line in rate(rows, price_spans(PriceBook(versions), tiers)):
        assert line.quantity >= 0
        assert line.micros >= 0
        assert line.cents >= 0


@settings(max_examples=300, deadline=None)
@given(months(signed=False))
def test_a_month_is_the_sum_of_its_days_up_to_the_fractions_they_dropped(month):
    """Per segment, the month's quantity is the sum of its days' quantities, exactly. Its
    amount is the sum of the days' amounts plus what the days' dropped fractions add up to:
    with N_d = quantity_d x micros, month = (sum of N_d) // per_units and each day
    N_d // per_units, so month - sum of days = (sum of (N_d mod per_units)) // per_units,
    between 0 and (days the segment has usage in) - 1."""
    versions, tiers, _, rows, _ = month
    spans = price_spans(PriceBook(versions), tiers)
    by_day = defaultdict(list)
    for row in rows:
        by_day[row[2].date()].append(row)
    days = [by_segment(rate(day_rows, spans)) for day_rows in by_day.values()]

    for key, (quantity, micros, _, _) in by_segment(rate(rows, spans)).items():
        price = key[3]
        parts = [day[key] for day in days if key in day]
        assert quantity == sum(part[0] for part in parts)
        dropped = sum(part[0] * price.micros % price.per_units for part in parts)
        assert micros - sum(part[1] for part in parts) == dropped // price.per_units
        assert 0 <= micros - sum(part[1] for part in parts) <= len(parts) - 1


@settings(max_examples=200, deadline=None)
@given(months(signed=True))
def test_negated_adjustments_rate_to_negated_lines(month):
    versions, tiers, _, _, adjustments = month
    spans = price_spans(PriceBook(versions), tiers)
    negated = [(c, d, h, -q) for c, d, h, q in adjustments]

    for line, opposite in zip(rate([], spans, adjustments), rate([], spans, negated), strict=True):
        assert (opposite.quantity, opposite.micros, opposite.cents) == (
            -line.quantity,
            -line.micros,
            -line.cents,
        )
        assert opposite.remainder_micros == -line.remainder_micros


@settings(max_examples=500, deadline=None)
@given(st.integers(-(10**18), 10**18))
def test_cents_are_the_nearest_cent_half_even(micros):
    cents, remainder = to_cents(micros)
    assert cents == round(Fraction(micros, 10_000))
    assert micros == cents * 10_000 + remainder
    assert abs(remainder) <= 5_000
