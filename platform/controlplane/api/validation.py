"""Request bodies through DRF serializers: invalid input raises, and the problem+json handler
answers 400 with the errors per field.

JSON bodies are held to the JSON types the OpenAPI description declares before DRF sees them:
DRF would turn ``"2"`` into the integer 2 and ``0`` into the string ``"0"``, which the
description does not allow and a client should hear about rather than have silently fixed.
"""

from django.http import QueryDict
from rest_framework import serializers

# An Idempotency-Key: 1 to 255 visible ASCII characters, no spaces (what survives every HTTP
# stack unchanged). The server checks it and the OpenAPI description states it.
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]{1,255}$"


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
