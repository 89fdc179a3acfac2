"""Bad input is a client error, never a server error, and changes nothing.

Against the real PostgreSQL (which refuses what SQLite would take: NUL characters, strings
longer than their column, integers beyond their type). Every list endpoint of the URLconf gets
forged cursors and bad page sizes; every field of every request body the OpenAPI description
declares gets hostile values of its type; every endpoint with a body gets hostile bodies; every
query parameter gets hostile values. The answer must be a 4xx application/problem+json with a
stable ``code``, and no row of any table may change.
"""

from __future__ import annotations

import base64
from urllib.parse import quote, urlencode

import pytest
from django.conf import settings
from django.db import models
from django.test import override_settings
from django.urls import reverse

from foundation.api.pagination import CursorPage
from tests.support import abuse

pytestmark = pytest.mark.django_db

NON_ASCII_DIGITS = "\u0661\u0660\u0660"  # Arabic-Indic digits: int() reads them as 100
SUPERSCRIPT_TWO = "\u00b2"  # str.isdigit() says it is a digit; int() refuses it
DEEP = 40  # levels: beyond what any body of the API nests (the parser's limit is 32)

# Refusals of one field's value: validation's, and the domain's that name the field.
FIELD_CODES = {"validation", "malformed_request", "invalid_amount", "webhook_url_refused"}


@pytest.fixture(autouse=True)
def _no_rate_limits():
    # Hundreds of requests per test from one caller: the limits are tested elsewhere.
    with override_settings(
        SLUICE_RATE_LIMIT_ORG_PER_MINUTE=10**6,
        SLUICE_RATE_LIMIT_CALLER_PER_MINUTE=10**6,
        SLUICE_RATE_LIMIT_ADDRESS_PER_MINUTE=10**6,
        # A usage export is only recorded and queued on a commit these tests never make: the
        # bucket is named, never called.
        SLUICE_EXPORT_BUCKET="sluice-test-exports",
    ):
        yield


@pytest.fixture
def world() -> abuse.World:
    return abuse.build_world()


def _route_path(route, world: abuse.World) -> str:
    return reverse(route.name, kwargs={name: world.url_values[name] for name in route.kwargs})


def _cursor(**tokens: str) -> str:
    """A cursor as DRF encodes one: a query string of ``p``osition, ``o``ffset, ``r``everse."""
    return base64.b64encode(urlencode(tokens).encode()).decode()


# Lists: cursors and page sizes ----------------------------------------------------------------

FORGED_CURSORS = {
    "position with a NUL": _cursor(p="a\x00b"),
    "position too long": _cursor(p="9" * 300),
    "negative offset": _cursor(o="-1"),
    "offset of non-ASCII digits": _cursor(o=NON_ASCII_DIGITS),
    "reverse not a number": _cursor(r="x"),
    "not base64": "!!!",
    "base64 of bytes that are not text": base64.b64encode(b"\xff\xfe").decode(),
    "NUL": "\x00",
}
BAD_LIMITS = [
    "0",
    "-1",
    "1.5",
    "null",
    "",
    str(2**63),
    "201",
    NON_ASCII_DIGITS,
    SUPERSCRIPT_TWO,
    "+5",
    " 5",
    "1e2",
    "0x10",
    "\x00",
]
# Positions that are not a time: refused where a list is ordered by time (most lists); a list
# ordered by name (topics) takes any text that fits the column.
FORGED_TIME_POSITIONS = {
    "position of the wrong type": _cursor(p="zzz"),
    "position before year 1 in UTC": _cursor(p="0001-01-01 00:00:00+01:00"),
    "position after year 9999 in UTC": _cursor(p="9999-12-31 23:59:59-01:00"),
    "position without an offset": _cursor(p="2026-01-01 00:00:00"),
}
LIST_ROUTES = abuse.list_routes()


def _forged_cursors(route) -> dict[str, str]:
    ordering = getattr(route.view_class, "ordering", None) or CursorPage.ordering
    field = route.view_class.model._meta.get_field(ordering[0].lstrip("-"))
    if isinstance(field, models.DateTimeField):
        return {**FORGED_CURSORS, **FORGED_TIME_POSITIONS}
    return FORGED_CURSORS


def test_every_list_endpoint_is_tried():
    names = {route.name for route in LIST_ROUTES}
    assert {"cluster-list", "topic-list", "member-list", "audit-event-list"} <= names
    assert len(names) >= 8


@pytest.mark.parametrize("route", LIST_ROUTES, ids=lambda route: route.name)
def test_list_refuses_forged_cursors_and_bad_limits(world, route):
    path = _route_path(route, world)
    failures = []
    for label, cursor in _forged_cursors(route).items():
        outcome = abuse.call_and_roll_back(world.client, "get", f"{path}?cursor={_quoted(cursor)}")
        problems = abuse.refusal_problems(outcome, status=400, code="validation")
        if not problems and "cursor" not in outcome.body.get("errors", {}):
            problems.append(f"errors name no cursor: {outcome.body}")
        failures += [f"cursor ({label}): {p}" for p in problems]
    for limit in BAD_LIMITS:
        outcome = abuse.call_and_roll_back(world.client, "get", f"{path}?limit={_quoted(limit)}")
        problems = abuse.refusal_problems(outcome, status=400, code="validation")
        if not problems and "limit" not in outcome.body.get("errors", {}):
            problems.append(f"errors name no limit: {outcome.body}")
        failures += [f"limit={limit!r}: {p}" for p in problems]
    assert failures == [], "\n".join(failures)


@pytest.mark.parametrize("route", LIST_ROUTES, ids=lambda route: route.name)
def test_list_cursors_it_hands_out_are_taken_back(world, route):
    """The cursor check refuses forgeries only: pages of one item, forward and back."""
    path = _route_path(route, world)
    first = world.client.get(path, {"limit": "1"})
    assert first.status_code == 200, first.content
    following = first.json()["next"]
    assert following, "the world has two of everything: a second page"
    second = world.client.get(following)
    assert second.status_code == 200, second.content
    assert second.json()["results"] != first.json()["results"]
    back = world.client.get(second.json()["previous"])
    assert back.status_code == 200, back.content
    assert back.json()["results"] == first.json()["results"]
    assert world.client.get(path, {"limit": "200"}).status_code == 200


def test_limit_bounds_are_in_the_openapi_description():
    described = 0
    for operation in abuse.operations():
        for parameter in operation.query_parameters:
            if parameter["name"] == "limit":
                described += 1
                schema = parameter["schema"]
                assert (schema["type"], schema["minimum"], schema["maximum"]) == (
                    "integer",
                    1,
                    200,
                ), operation.key
    assert described >= len(LIST_ROUTES), described  # every list states its bounds


def _quoted(value: str) -> str:
    return quote(value, safe="")


# Request bodies: every field of every operation -----------------------------------------------

BODY_OPERATIONS = [op for op in abuse.operations() if op.body_schema is not None]


def test_every_operation_with_a_body_has_a_base_body():
    keys = {operation.key for operation in BODY_OPERATIONS}
    assert keys - set(abuse.BASE_BODIES) == set(), "declare a valid base body for these"
    assert len(keys) >= 13


def _deep(levels: int):
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


def hostile_values(schema: dict) -> list[tuple[str, object, bool]]:
    """(label, value, must be refused) for a property of this schema. Values a field may
    legitimately take (any text for a name) must only never be a server error."""
    schema = abuse.resolve_schema(schema)
    kind = schema.get("type")
    nullable = schema.get("nullable", False)
    values: list[tuple[str, object, bool]] = [
        ("a list", ["x"], kind != "array"),
        ("nested 40 deep", _deep(DEEP), True),
        ("an object", {"x": "y"}, kind != "object"),
        ("null", None, not nullable),
    ]
    if kind == "string" or "enum" in schema:
        values += [
            ("text with a NUL", "a\x00b", True),
            ("a megabyte of text", "x" * 1_000_000, True),
            ("true", True, True),
            ("non-ASCII digits", NON_ASCII_DIGITS, bool(schema.get("enum"))),
            ("a superscript digit", SUPERSCRIPT_TWO, bool(schema.get("enum"))),
            ("an emoji", "\U0001f642", bool(schema.get("enum"))),
        ]
        if schema.get("maxLength"):
            values.append(("one over maxLength", "x" * (schema["maxLength"] + 1), True))
        if schema.get("format") == "date-time":
            values += [
                ("before year 1 in UTC", "0001-01-01T00:00:00+01:00", True),
                ("after year 9999 in UTC", "9999-12-31T23:59:59-01:00", True),
                ("a date that does not exist", "2026-02-30T00:00:00Z", True),
                ("non-ASCII digits", "\u0662\u0660\u0662\u0666-11-01T00:00:00Z", True),
            ]
    elif kind == "integer":
        values += [
            ("2^63", 2**63, True),
            ("-2^63 - 1", -(2**63) - 1, True),
            ("10^30", 10**30, True),
            ("1.5", 1.5, True),
            ("true", True, True),
            ("empty text", "", True),
            ("text with a NUL", "1\x00", True),
            # A string where an integer is declared: refused once types are strict; never 5xx.
            ("non-ASCII digits", NON_ASCII_DIGITS, False),
        ]
        if "minimum" in schema:
            values.append(("one under minimum", schema["minimum"] - 1, True))
        if "maximum" in schema:
            values.append(("one over maximum", schema["maximum"] + 1, True))
    elif kind == "number":
        values += [
            ("true", True, True),
            ("a number as text", "1", True),
            ("non-ASCII digits", NON_ASCII_DIGITS, True),
            ("infinity", float("inf"), True),  # Infinity: not JSON
            ("10^400", 10**400, True),  # a float's infinity to the parser
            ("1e-7", 1e-7, True),  # finer than any number the API takes
        ]
        # The generated description states a decimal field's bounds as Decimals.
        if "minimum" in schema:
            values.append(("one under minimum", float(schema["minimum"]) - 1, True))
        if "maximum" in schema:
            values.append(("one over maximum", float(schema["maximum"]) + 1, True))
    elif kind == "object":
        values += [
            ("a key with a NUL", {"a\x00": "1"}, True),
            ("a key of 10,000 characters", {"k" * 10_000: "1"}, True),
            ("text", "x", True),
            ("a value nested 40 deep", {"x": _deep(DEEP)}, True),
        ]
    return values


@pytest.mark.parametrize("operation", BODY_OPERATIONS, ids=lambda operation: operation.key)
def test_every_field_refuses_hostile_values(world, operation):
    path = abuse.concrete_path(operation.template, world)
    base = abuse.BASE_BODIES[operation.key]
    base_outcome = abuse.call_and_roll_back(world.client, operation.method, path, body=dict(base))
    if operation.key in abuse.BASES_REFUSED:
        assert base_outcome.status == abuse.BASES_REFUSED[operation.key], (base, base_outcome)
    else:
        assert 200 <= base_outcome.status < 300, (base, base_outcome)

    failures = []
    properties = {
        name: schema
        for name, schema in operation.body_schema.get("properties", {}).items()
        if not abuse.resolve_schema(schema).get("readOnly")
    }
    assert properties, f"{operation.key} declares a body without fields"
    for name, schema in properties.items():
        for label, value, must_refuse in hostile_values(schema):
            outcome = abuse.call_and_roll_back(
                world.client, operation.method, path, body={**base, name: value}
            )
            if must_refuse:
                problems = abuse.refusal_problems(outcome)
                if not problems and outcome.body["code"] not in FIELD_CODES:
                    problems.append(f"code {outcome.body['code']!r}")
            else:
                problems = _never_a_server_error(outcome)
            failures += [f"{name} ({label}): {p}" for p in problems]
    assert failures == [], "\n".join(failures)


def _never_a_server_error(outcome: abuse.Outcome) -> list[str]:
    if outcome.status >= 500:
        return [f"answered {outcome.status}"]
    if outcome.status >= 400:
        return abuse.refusal_problems(outcome)
    return []


@pytest.mark.parametrize("operation", BODY_OPERATIONS, ids=lambda operation: operation.key)
def test_every_body_refuses_hostile_bodies(world, operation):
    path = abuse.concrete_path(operation.template, world)
    too_large = settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1
    bodies = [
        ("arrays nested 1,000 deep", b"[" * 1000 + b"]" * 1000, None, 400, "malformed_request"),
        ("objects nested 1,000 deep", b'{"a":' * 1000 + b"1" + b"}" * 1000, None, 400, None),
        ("over the upload limit", b'"' + b"x" * too_large + b'"', None, 413, "payload_too_large"),
        ("not JSON", b"{", None, 400, "malformed_request"),
        ("not UTF-8", b'{"name": "\xff"}', None, 400, "malformed_request"),
        ("NaN", b'{"name": NaN}', None, 400, "malformed_request"),
        ("a key with a NUL", b'{"na\\u0000me": "x"}', None, 400, "malformed_request"),
        ("null", b"null", None, 400, None),
        ("an array", b"[]", None, 400, None),
        ("a string", b'"x"', None, 400, None),
        ("a number", b"1", None, 400, None),
        ("plain text", b"name=x", "text/plain", 415, "unsupported_media_type"),
        ("a form", b"name=x", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        ("XML", b"<name>x</name>", "application/xml", 415, "unsupported_media_type"),
        ("multipart", b"--b--", "multipart/form-data; boundary=b", 415, "unsupported_media_type"),
    ]
    failures = []
    for label, raw, content_type, status, code in bodies:
        outcome = abuse.call_and_roll_back(
            world.client, operation.method, path, raw=raw, content_type=content_type
        )
        problems = abuse.refusal_problems(outcome, status=status, code=code)
        if not problems and outcome.body["code"] not in FIELD_CODES | {
            "payload_too_large",
            "unsupported_media_type",
        }:
            problems.append(f"code {outcome.body['code']!r}")
        failures += [f"{label}: {p}" for p in problems]
    assert failures == [], "\n".join(failures)


# Query parameters -----------------------------------------------------------------------------

QUERY_OPERATIONS = [op for op in abuse.operations() if op.method == "get" and op.query_parameters]


def query_hostile_values(schema: dict) -> list[tuple[str, str, bool]]:
    schema = abuse.resolve_schema(schema)
    if schema.get("type") == "array":
        schema = abuse.resolve_schema(schema["items"])
    values = [("a NUL", "a\x00b", True), ("10,000 characters", "x" * 10_000, None)]
    restricted = schema.get("type") != "string" or "enum" in schema or "format" in schema
    values += [
        ("non-ASCII digits", NON_ASCII_DIGITS, restricted),
        ("a superscript digit", SUPERSCRIPT_TWO, restricted),
        ("empty", "", None),
    ]
    if schema.get("format") == "date-time":
        values += [
            ("before year 1 in UTC", "0001-01-01T00:00:00+01:00", True),
            ("after year 9999 in UTC", "9999-12-31T23:59:59-01:00", True),
            ("the last half hour of 9999", "9999-12-31T23:30:00Z", True),
            ("non-ASCII digits", "\u0662\u0660\u0662\u0666-11-01T00:00:00Z", True),
        ]
    if schema.get("type") == "integer":
        values += [("2^63", str(2**63), True), ("1.5", "1.5", True), ("null", "null", True)]
    return values


def test_every_query_parameter_is_tried():
    names = {p["name"] for op in QUERY_OPERATIONS for p in op.query_parameters}
    assert {"cursor", "limit", "start", "end", "since", "until", "action"} <= names


@pytest.mark.parametrize("operation", QUERY_OPERATIONS, ids=lambda operation: operation.key)
def test_every_query_parameter_refuses_hostile_values(world, operation):
    path = abuse.concrete_path(operation.template, world)
    failures = []
    for parameter in operation.query_parameters:
        for label, value, must_refuse in query_hostile_values(parameter["schema"]):
            url = f"{path}?{parameter['name']}={_quoted(value)}"
            outcome = abuse.call_and_roll_back(world.client, "get", url)
            if must_refuse:
                problems = abuse.refusal_problems(outcome, status=400, code="validation")
            else:
                problems = _never_a_server_error(outcome)
            failures += [f"{parameter['name']} ({label}): {p}" for p in problems]
    assert failures == [], "\n".join(failures)


# URLs and the errors Django answers itself ----------------------------------------------------


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
def test_unrouted_api_paths_are_problem_404s(world, debug):
    paths = [
        "/api/v1/no-such-thing/",
        "/api/nothing",
        f"/api/v1/orgs/{world.organization.public_id}/clusters/a%00b/topics/",
        "/api/v1/orgs/a%00b/clusters/",
        "/api/v1/orgs/" + "o" * 10_000 + "/",
    ]
    with override_settings(DEBUG=debug):
        for path in paths:
            outcome = abuse.call_and_roll_back(world.client, "get", path)
            assert abuse.refusal_problems(outcome, status=404, code="not_found") == [], path
