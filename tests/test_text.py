"""foundation.text: a number with its noun, as every page and message writes it."""

import pytest

from foundation.text import counted


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
