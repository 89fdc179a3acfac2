"""foundation.text: a number with its noun, as every page and message writes it."""

import pytest

from foundation.text import bytes_label, counted, duration_label, elapsed_label, rate_label


@pytest.mark.parametrize(
    ("number", "noun", "plural", "expected"),
    [
        (1, "hour", None, "1 hour"),
        (0, "hour", None, "0 hours"),
        (2, "capacity unit", None, "2 capacity units"),
        (1200, "partition-hour", None, "1,200 partition-hours"),
        (3, "child", "children", "3 children"),
        (1, "child", "children", "1 child"),
    ],
)
def test_a_number_reads_with_its_noun(number, noun, plural, expected):
    assert counted(number, noun, plural) == expected


@pytest.mark.parametrize(
    ("ms", "expected"),
    [
        (7 * 86_400_000, "7 days"),
        (365 * 86_400_000, "1 year"),
        (36 * 3_600_000, "36 hours"),
        (90 * 60_000, "90 minutes"),
        (1_500, "1,500 ms"),
    ],
)
def test_a_duration_reads_in_its_largest_whole_unit(ms, expected):
    assert duration_label(ms) == expected


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (999, "999 bytes"),
        (1, "1 byte"),
        (1_500, "1.5 KB"),
        (123_456_789, "123.5 MB"),
        (12_500_000_000, "12.5 GB"),
        (2_000_000_000_000, "2 TB"),
    ],
)
def test_a_byte_count_reads_in_decimal_units(count, expected):
    assert bytes_label(count) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0.85, "850 ms"), (42, "42 s"), (185, "3 min 5 s"), (120, "2 min"), (7_260, "2 h 1 min")],
)
def test_a_time_taken_reads_in_at_most_two_units(seconds, expected):
    assert elapsed_label(seconds) == expected


def test_a_byte_rate_reads_in_megabytes_per_second():
    assert rate_label(2_500_000) == "2.5 MB/s"
