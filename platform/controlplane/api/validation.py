"""Request bodies through DRF serializers: invalid input raises, and the problem+json handler
answers 400 with the errors per field. And the checks every layer shares for what arrives as
text: integers written in decimal digits, instants with their offset."""

import re
from datetime import UTC, datetime

from rest_framework import serializers

# Java's int and long, the types Kafka's configs (and Strimzi's fields) are read into.
INT32_RANGE = (-(2**31), 2**31 - 1)
INT64_RANGE = (-(2**63), 2**63 - 1)

# ASCII digits only: Python's int() (and \d) also read other scripts' digits (Arabic-Indic
# "\u0661\u0660\u0660" is 100 to int()), which Sluice does not take for numbers. No leading '+',
# no spaces, no '_' separators either.
_DECIMAL_INTEGER = re.compile(r"-?[0-9]{1,19}", re.ASCII)

# Instants the API takes in: well inside Python's years 1 to 9999, so that widening a window
# by a bucket, or going back 400 days from it, cannot overflow.
EARLIEST_INSTANT = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_INSTANT = datetime(9999, 1, 1, tzinfo=UTC)
# RFC 3339's date-time: full date, time with seconds, an offset (fromisoformat alone would also
# take week dates, basic formats, no seconds). RFC 3339 allows a space for the T, as DRF's cursor
# positions write it.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})?", re.ASCII
)
_NOT_RFC3339 = (
    "Not an RFC 3339 date-time: e.g. 2026-11-01T00:00:00Z (in a query string, write + as %2B)"
)


def validated_data(serializer_class: type[serializers.Serializer], data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def decimal_integer(text, *, minimum: int, maximum: int) -> int | None:
    """The integer ``text`` writes in ASCII decimal digits (an optional leading '-'), when it is
    within ``[minimum, maximum]``; None for anything else."""
    if not isinstance(text, str) or not _DECIMAL_INTEGER.fullmatch(text):
        return None
    value = int(text)
    return value if minimum <= value <= maximum else None


def instant(text) -> datetime:
    """An RFC 3339 date-time with its offset (``Z`` or ``±hh:mm``), as UTC, between
    EARLIEST_INSTANT and LATEST_INSTANT. Raises ValueError saying what is wrong."""
    if not isinstance(text, str) or not _RFC3339.fullmatch(text):
        raise ValueError(_NOT_RFC3339)
    try:
        value = datetime.fromisoformat(text.upper())
    except ValueError:
        raise ValueError(_NOT_RFC3339) from None
    if value.utcoffset() is None:
        raise ValueError("Needs a time zone offset: Z or ±hh:mm (RFC 3339)")
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is in year 0
        value = None
    if value is None or not EARLIEST_INSTANT <= value < LATEST_INSTANT:
        raise ValueError(
            f"Out of range: from {_rfc3339(EARLIEST_INSTANT)} to before {_rfc3339(LATEST_INSTANT)}"
        )
    return value


def _rfc3339(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")
