"""Throws bad input at the API and checks it is refused as a client error, changing nothing.

Nobody lists endpoints or fields here: list endpoints come from the URLconf (the walk of
tests/support/isolation.py) and request bodies and query parameters from the OpenAPI description
the server generates, so an endpoint or a field added tomorrow is tried tomorrow. What each
request needs to be otherwise valid (a base body per operation) is declared below, and an
operation without one fails the tests, so nobody adds a body without deciding what it is.

Every request runs inside a savepoint that is rolled back: each one starts from the same world,
and whether it wrote anything is judged by comparing every row of the project's tables before
and after it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.apps import apps
from django.db import transaction
from django.urls import resolve
from drf_spectacular.generators import SchemaGenerator
from rest_framework.mixins import ListModelMixin

from billing.invoices import LineRecord, invoice_record
from billing.models import (
    BudgetAlert,
    BudgetAlertKind,
    ClosedMonth,
    ExportTrigger,
    Invoice,
    UsageExport,
    WebhookDelivery,
)
from clusters import services as cluster_services
from clusters.models import Cluster, Credential, Topic
from clusters.models import Operation as ClusterOperation
from tenants import services as tenant_services
from tenants.audit import Actor
from tenants.models import ApiKey, AuditEvent, Invitation, Membership
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, add_member, make_api_key, make_cluster, make_org
from tests.support.clients import session_client
from tests.support.isolation import Route, api_routes

PROBLEM = "application/problem+json"
PROJECT_APPS = ("tenants", "clusters", "billing", "controlplane")
BODY_METHODS = ("post", "put", "patch")


@dataclass
class World:
    """An organization with one object of each kind, and its owner's client."""

    organization: object
    client: object
    objects_by_model: dict[type, object]
    url_values: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Operation:
    method: str
    template: str  # the OpenAPI path, e.g. /api/v1/orgs/{org}/clusters/
    body_schema: dict | None
    query_parameters: tuple[dict, ...]

    @property
    def key(self) -> str:
        return f"{self.method.upper()} {self.template}"


# What each operation with a body needs to succeed: the hostile value then replaces one field.
BASE_BODIES = {
    "POST /api/v1/invitations/accept/": {"token": "x" * 43},
    "POST /api/v1/invitations/decline/": {"token": "x" * 43},
    "POST /api/v1/orgs/": {"name": "Another"},
    "PATCH /api/v1/orgs/{org}/": {"name": "Renamed"},
    "POST /api/v1/orgs/{org}/api-keys/": {"name": "automation", "role": "viewer"},
    "POST /api/v1/orgs/{org}/clusters/": {
        "name": "another",
        "type": "serverless",
        "region": "eu-west-1",
    },
    "PATCH /api/v1/orgs/{org}/clusters/{id}/": {"name": "renamed"},
    "POST /api/v1/orgs/{org}/clusters/{cluster}/credentials/": {"name": "app"},
    "PATCH /api/v1/orgs/{org}/clusters/{cluster}/credentials/{id}/": {"producer_byte_rate": 1000},
    "POST /api/v1/orgs/{org}/clusters/{cluster}/topics/": {"name": "new-topic", "partitions": 1},
    "PATCH /api/v1/orgs/{org}/clusters/{cluster}/topics/{name}/": {"partitions": 4},
    "POST /api/v1/orgs/{org}/clusters/{cluster}/consumer-groups/{group}/reset-offsets/": {
        "to": "earliest"
    },
    "POST /api/v1/orgs/{org}/invitations/": {"email": "new@example.com", "role": "viewer"},
    "PATCH /api/v1/orgs/{org}/members/{id}/": {"role": "viewer"},
    "PUT /api/v1/orgs/{org}/billing-account/": {
        "email": "ap@example.com",
        "name": "Abused Corp",
        "address_line1": "1 Main Street",
        "address_line2": "",
        "city": "Springfield",
        "postal_code": "12345",
        "country": "US",
        "tax_id": "",
        "currency": "usd",
    },
    "PATCH /api/v1/orgs/{org}/billing-account/": {"city": "Shelbyville"},
    # October is closed in the world; a bucket is set by the tests that need the base to pass.
    "POST /api/v1/orgs/{org}/billing/exports/": {"month": "2026-10"},
    "PUT /api/v1/orgs/{org}/billing/budget/": {"monthly_usd": "250.00"},
    "PUT /api/v1/orgs/{org}/spend-caps/organization/": {"monthly_cap_usd": "250.00"},
    "PUT /api/v1/orgs/{org}/spend-caps/clusters/{cluster}/": {"monthly_cap_usd": "99.50"},
    # A literal public address: accepted without a DNS lookup.
    "PUT /api/v1/orgs/{org}/billing/webhook/": {"url": "https://8.8.8.8/hooks/sluice"},
    "POST /api/v1/catalog/estimate/": {
        "type": "serverless",
        "ingress_mbps": 1,
        "egress_mbps": 3,
        "retention_hours": 24,
        "partitions": 6,
    },
}
# Bases that cannot succeed in a test (an invitation's token comes by e-mail; consumer groups
# need a real Kafka): their fields are still judged, against the status the base gets.
BASES_REFUSED = {
    "POST /api/v1/invitations/accept/": 404,
    "POST /api/v1/invitations/decline/": 404,
    "POST /api/v1/orgs/{org}/clusters/{cluster}/consumer-groups/{group}/reset-offsets/": 409,
}


def build_world() -> World:
    owner = UserFactory()
    organization = make_org(owner=owner, name="Abused Corp")
    member = add_member(organization, Role.DEVELOPER)
    add_member(organization, Role.VIEWER)
    api_key, _ = make_api_key(organization, Role.DEVELOPER)
    make_api_key(organization, Role.VIEWER)
    cluster, operation = make_cluster(organization, name="events")
    make_cluster(organization, name="logs")
    actor = Actor(user=owner)
    with tenant_scope(organization):
        invitation, _ = tenant_services.invitation_create(
            organization=organization,
            email="invitee@example.com",
            role=Role.VIEWER,
            actor=actor,
            actor_role=Role.OWNER,
            accept_url_base="http://testserver/invitations/",
        )
        tenant_services.invitation_create(
            organization=organization,
            email="another-invitee@example.com",
            role=Role.VIEWER,
            actor=actor,
            actor_role=Role.OWNER,
            accept_url_base="http://testserver/invitations/",
        )
        topic, _ = cluster_services.topic_create(
            cluster=cluster, actor=actor, name="orders", partitions=3
        )
        cluster_services.topic_create(cluster=cluster, actor=actor, name="payments", partitions=1)
        credential, _, _ = cluster_services.credential_create(
            cluster=cluster, actor=actor, name="app"
        )
        cluster_services.credential_create(cluster=cluster, actor=actor, name="other-app")
        event = AuditEvent.objects.first()
        invoice = invoice_record(
            organization=organization, year=2026, month=10, lines=[sample_line(cluster)]
        )
        invoice_record(organization=organization, year=2026, month=11, lines=[])
        october = datetime(2026, 10, 1, tzinfo=UTC)
        ClosedMonth.objects.create(
            organization=organization, period_start=october, closed_at=october
        )
        usage_export, _ = (
            UsageExport.objects.create(
                organization=organization,
                period_start=october,
                trigger=ExportTrigger.REQUEST,
                bucket="abused-exports",
                prefix=f"usage/{organization.public_id}/2026/10/{export_id}/",
                public_id=export_id,
            )
            for export_id in ("uexp_first", "uexp_second")
        )
        deliveries = [_budget_alert_delivery(organization, threshold) for threshold in ("50", "80")]
    client = session_client(owner)
    client.raise_request_exception = False  # a server error is an answer to report here
    return World(
        organization=organization,
        client=client,
        objects_by_model={
            Membership: member,
            Invitation: invitation,
            ApiKey: api_key,
            AuditEvent: event,
            Cluster: cluster,
            ClusterOperation: operation,
            Topic: topic,
            Credential: credential,
            Invoice: invoice,
            UsageExport: usage_export,
            WebhookDelivery: deliveries[0],
        },
        url_values={
            "org": organization.public_id,
            "cluster": cluster.public_id,
            "group": "readers",
        },
    )


def _budget_alert_delivery(organization, threshold: str) -> WebhookDelivery:
    november = datetime(2026, 11, 1, tzinfo=UTC)
    alert = BudgetAlert.objects.create(
        organization=organization,
        period_start=november,
        threshold=threshold,
        kind=BudgetAlertKind.THRESHOLD,
        budget_micros=100_000_000,
        month_to_date_micros=int(threshold) * 1_000_000,
        forecast_micros=int(threshold) * 1_000_000,
        fired_at=november + timedelta(days=10),
    )
    return WebhookDelivery.objects.create(
        organization=organization,
        alert=alert,
        event_type=alert.kind,
        body="{}",
        next_attempt_at=alert.fired_at,
    )


def sample_line(cluster) -> LineRecord:
    """An invoice line of the cluster: 1,000 partition-hours at $0.0015 = $1.50."""
    start = datetime(2026, 10, 1, tzinfo=UTC)
    return LineRecord(
        cluster_public_id=cluster.public_id,
        cluster_name=cluster.name,
        dimension="partition_hours",
        segment_start=start,
        segment_end=start + timedelta(days=31),
        quantity=1_000,
        unit_price_micros=1_500,
        per_units=1,
        amount_micros=1_500_000,
        amount_cents=150,
        remainder_micros=0,
    )


# Discovery ------------------------------------------------------------------------------------


def list_routes() -> list[Route]:
    """Every paginated collection of the API: list views, without an object in their URL."""
    found = []
    for route in api_routes():
        view = route.view_class
        object_kwarg = getattr(view, "lookup_url_kwarg", None) or "id"
        is_list = isinstance(view, type) and issubclass(view, ListModelMixin)
        if is_list and object_kwarg not in route.kwargs and "get" in route.methods:
            found.append(route)
    return found


_SCHEMA: dict | None = None


def openapi() -> dict:
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = SchemaGenerator().get_schema(request=None, public=True)
    return _SCHEMA


def operations() -> list[Operation]:
    found = []
    for template, methods in openapi()["paths"].items():
        for method, spec in methods.items():
            if method not in ("get", *BODY_METHODS, "delete"):
                continue
            body = spec.get("requestBody", {}).get("content", {}).get("application/json")
            query = tuple(p for p in spec.get("parameters", []) if p.get("in") == "query")
            schema = resolve_schema(body["schema"]) if body else None
            found.append(Operation(method, template, schema, query))
    return found


def resolve_schema(schema: dict) -> dict:
    """The schema with its ``$ref`` (and a lone ``allOf``) followed, one level at a time; for a
    value that may also be blank (``oneOf`` it and the empty string), the value's."""
    while True:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            schema = openapi()["components"]["schemas"][name]
        elif list(schema) == ["allOf"] and len(schema["allOf"]) == 1:
            schema = schema["allOf"][0]
        elif len(schema.get("oneOf", [])) == 2 and any(map(_is_blank, schema["oneOf"])):
            schema = next(s for s in schema["oneOf"] if not _is_blank(s))
        else:
            return schema


def _is_blank(schema: dict) -> bool:
    """Only the empty string: how the description writes "or blank"."""
    schema = resolve_schema(schema)
    return schema.get("maxLength") == 0 or schema.get("enum") == [""]


def concrete_path(template: str, world: World) -> str:
    """The template's path parameters filled with the world's objects."""
    values = dict(world.url_values)
    names = re.findall(r"{(\w+)}", template)
    object_names = [n for n in names if n not in values]
    if object_names:
        # Which model the object parameter names: the view the path resolves to says.
        probe = template
        for name in names:
            probe = probe.replace("{" + name + "}", values.get(name, "x_0"))
        view = resolve(probe).func.cls
        sample = world.objects_by_model[view.model]
        for name in object_names:
            values[name] = str(getattr(sample, view.lookup_field))
    path = template
    for name in names:
        path = path.replace("{" + name + "}", values[name])
    return path


# Requests -------------------------------------------------------------------------------------


def project_rows() -> dict[str, list]:
    """Every row of every table of the project's apps."""
    rows = {}
    for label in PROJECT_APPS:
        for model in apps.get_app_config(label).get_models():
            manager = getattr(model, "unscoped_all_tenants", model._default_manager)
            rows[model._meta.label] = list(manager.order_by("pk").values())
    return rows


@dataclass
class Outcome:
    status: int
    content_type: str
    body: dict | None
    wrote: bool


def call_and_roll_back(
    client, method: str, path: str, *, body=None, raw: bytes | None = None, content_type=None
) -> Outcome:
    """One request in a savepoint rolled back afterwards; whether it changed any row."""
    with transaction.atomic():
        before = project_rows()
        kwargs = {}
        if raw is not None:
            kwargs = {"data": raw, "content_type": content_type or "application/json"}
        elif body is not None:
            kwargs = {"data": json.dumps(body), "content_type": "application/json"}
        response = getattr(client, method)(path, **kwargs)
        # After a server error the transaction may be unusable: judge nothing more then.
        wrote = response.status_code < 500 and project_rows() != before
        transaction.set_rollback(True)
    content_type = response.get("Content-Type", "")
    parsed = None
    if content_type.startswith(("application/json", PROBLEM)) and response.content:
        parsed = json.loads(response.content)
    return Outcome(response.status_code, content_type, parsed, wrote)


def refusal_problems(outcome: Outcome, *, status: int | None = None, code: str | None = None):
    """What is wrong with ``outcome`` as the refusal of bad input: a 4xx problem+json with a
    ``code`` (the given one, if any), and nothing written."""
    problems = []
    if not 400 <= outcome.status < 500:
        problems.append(f"answered {outcome.status}")
    elif status is not None and outcome.status != status:
        problems.append(f"answered {outcome.status}, not {status}")
    if outcome.status >= 400:
        if outcome.content_type != PROBLEM:
            problems.append(f"content type {outcome.content_type!r}")
        elif not isinstance(outcome.body, dict) or not outcome.body.get("code"):
            problems.append("a problem without a code")
        elif code is not None and outcome.body["code"] != code:
            problems.append(f"code {outcome.body['code']!r}, not {code!r}")
    if outcome.wrote:
        problems.append("wrote to the database")
    return problems
