"""Request bodies through DRF serializers: invalid input raises, and the problem+json handler
answers 400 with the errors per field. And the checks every layer shares for what arrives as
text: integers written in decimal digits, instants with their offset.

JSON bodies are held to the JSON types the OpenAPI description declares before DRF sees them:
DRF would turn ``"2"`` into the integer 2 and ``0`` into the string ``"0"``, which the
description does not allow and a client should hear about rather than have silently fixed.
"""

import re
from datetime import UTC, datetime

from django.http import QueryDict
from rest_framework import serializers

# An Idempotency-Key: 1 to 255 visible ASCII characters, no spaces (what survives every HTTP
# stack unchanged). The server checks it and the OpenAPI description states it.
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]{1,255}$"

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
    if isinstance(data, QueryDict):  # query strings are text; their fields parse it
        data = query_values(serializer_class(), data)
    else:
        errors = json_type_errors(serializer_class(), data)
        if errors:
            raise serializers.ValidationError(errors)
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def query_values(serializer: serializers.Serializer, query: QueryDict) -> dict:
    """The query string as plain values (lists for list fields): ``?start=`` is then an empty
    value to judge, where DRF's form handling would take it for an absent one."""
    values = {}
    for name, field in serializer.fields.items():
        if name in query:
            many = isinstance(field, serializers.ListField)
            values[name] = query.getlist(name) if many else query[name]
    return values


def json_type_errors(field: serializers.Field, value):
    """The errors of ``value`` whose JSON type is not the one ``field`` declares (a message
    list, or per key for objects), or None when every type is right."""
    if value is None:
        return None  # null is for the field's own allow_null to judge
    if isinstance(field, serializers.Serializer):
        if not isinstance(value, dict):
            return None  # the serializer answers a non-object itself
        nested = {}
        for name, child in field.fields.items():
            if child.read_only or name not in value:
                continue
            error = json_type_errors(child, value[name])
            if error:
                nested[name] = error
        return nested or None
    if isinstance(field, serializers.DictField):
        if not isinstance(value, dict):
            return [field.error_messages["not_a_dict"].format(input_type=type(value).__name__)]
        nested = {key: json_type_errors(field.child, item) for key, item in value.items()}
        return {key: error for key, error in nested.items() if error} or None
    if isinstance(field, serializers.ListField):
        if not isinstance(value, list):
            return [field.error_messages["not_a_list"].format(input_type=type(value).__name__)]
        nested = {str(i): json_type_errors(field.child, item) for i, item in enumerate(value)}
        return {index: error for index, error in nested.items() if error} or None
    expected = _json_type(field)
    if expected is not None and not _is_json_type(value, expected):
        return [f"Must be a JSON {expected}."]
    return None


def _json_type(field: serializers.Field) -> str | None:
    if isinstance(field, serializers.BooleanField):
        return "boolean"
    if isinstance(field, serializers.IntegerField):
        return "integer"
    if isinstance(field, serializers.FloatField | serializers.DecimalField):
        return "number"
    if isinstance(field, serializers.ChoiceField):
        kinds = {type(choice) for choice in field.choices}
        return "string" if kinds == {str} else None
    if isinstance(field, serializers.CharField | serializers.DateTimeField):
        return "string"
    if isinstance(field, serializers.DateField | serializers.TimeField):
        return "string"
    return None


def _is_json_type(value, expected: str) -> bool:
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str)


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
