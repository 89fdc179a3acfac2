"""Role x endpoint x method: who may do what, for members (session) and API keys alike.

The table is written out by hand from the product's role definitions; a test checks it covers
every organization route the API has, so a new endpoint cannot ship without its row."""

import itertools
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from billing.budgets import budget_set
from billing.caps import cap_set
from billing.invoices import invoice_record
from billing.models import (
    BudgetAlert,
    BudgetAlertKind,
    ExportTrigger,
    UsageExport,
    WebhookDelivery,
)
from billing.webhook_endpoints import endpoint_set
from tenants import services
from tenants.audit import Actor
from tenants.models import AuditEvent
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, add_member, make_api_key, make_cell, make_cluster
from tests.support.clients import key_client, session_client
from tests.support.isolation import api_routes

pytestmark = pytest.mark.django_db

ALL = set(Role.values)
MANAGERS = {Role.OWNER, Role.ADMIN}
BUILDERS = {Role.OWNER, Role.ADMIN, Role.DEVELOPER}
BILLERS = {Role.OWNER, Role.BILLING}

# (route, method) -> (roles allowed, status when allowed)
MATRIX = {
    ("organization-detail", "get"): (ALL, 200),
    ("organization-detail", "patch"): (MANAGERS, 200),
    # Closing is the owners' (allowed, but refused here: the confirmation is not the name).
    ("organization-detail", "delete"): ({Role.OWNER}, 400),
    ("my-membership", "get"): (ALL, 200),
    ("my-membership", "delete"): (ALL, 204),
    ("member-list", "get"): (ALL, 200),
    ("member-detail", "get"): (ALL, 200),
    ("member-detail", "patch"): (MANAGERS, 200),
    ("member-detail", "delete"): (MANAGERS, 204),
    ("invitation-list", "get"): (MANAGERS, 200),
    ("invitation-list", "post"): (MANAGERS, 201),
    ("invitation-detail", "get"): (MANAGERS, 200),
    ("invitation-detail", "delete"): (MANAGERS, 204),
    ("api-key-list", "get"): (BUILDERS, 200),
    ("api-key-list", "post"): (BUILDERS, 201),
    ("api-key-detail", "get"): (BUILDERS, 200),
    ("api-key-detail", "delete"): (BUILDERS, 204),
    ("audit-event-list", "get"): (MANAGERS, 200),
    ("audit-event-detail", "get"): (MANAGERS, 200),
    ("cluster-list", "get"): (BUILDERS | {Role.VIEWER}, 200),
    ("cluster-list", "post"): (BUILDERS, 202),
    ("cluster-detail", "get"): (BUILDERS | {Role.VIEWER}, 200),
    ("cluster-detail", "patch"): (BUILDERS, 200),
    ("cluster-detail", "delete"): (BUILDERS, 202),
    ("cluster-retry", "post"): (BUILDERS, 409),  # allowed, but only a failed cluster retries
    ("operation-list", "get"): (BUILDERS | {Role.VIEWER}, 200),
    ("operation-detail", "get"): (BUILDERS | {Role.VIEWER}, 200),
    ("topic-list", "get"): (BUILDERS | {Role.VIEWER}, 200),
    ("topic-list", "post"): (BUILDERS, 202),
    ("topic-detail", "get"): (BUILDERS | {Role.VIEWER}, 200),
    ("topic-detail", "patch"): (BUILDERS, 202),
    ("topic-detail", "delete"): (BUILDERS, 202),
    ("credential-list", "get"): (BUILDERS | {Role.VIEWER}, 200),
    ("credential-list", "post"): (BUILDERS, 202),
    ("credential-detail", "get"): (BUILDERS | {Role.VIEWER}, 200),
    ("credential-detail", "patch"): (BUILDERS, 202),
    ("credential-detail", "delete"): (BUILDERS, 202),
    ("credential-rotate", "post"): (BUILDERS, 202),
    # Consumer groups are read from a real Kafka: allowed, but the simulated data plane has none.
    ("consumer-group-list", "get"): (BUILDERS | {Role.VIEWER}, 409),
    ("consumer-group-detail", "get"): (BUILDERS | {Role.VIEWER}, 409),
    ("consumer-group-reset-offsets", "post"): (BUILDERS, 409),
    # Usage is for every member: the billing role reads it too (it explains the invoice).
    ("organization-usage", "get"): (ALL, 200),
    ("cluster-usage", "get"): (ALL, 200),
    # Billing: owners and billing members; admins read.
    ("billing-account", "get"): (BILLERS | {Role.ADMIN}, 200),
    ("billing-account", "put"): (BILLERS, 200),
    ("billing-account", "patch"): (BILLERS, 200),
    ("invoice-list", "get"): (BILLERS | {Role.ADMIN}, 200),
    ("invoice-detail", "get"): (BILLERS | {Role.ADMIN}, 200),
    ("invoice-lines-csv", "get"): (BILLERS | {Role.ADMIN}, 200),
    ("organization-costs", "get"): (BILLERS | {Role.ADMIN}, 200),
    # The budget and the webhook endpoint exist before (Target): read, set, then removed.
    ("budget", "get"): (BILLERS | {Role.ADMIN}, 200),
    ("budget", "put"): (BILLERS, 200),
    ("budget", "delete"): (BILLERS, 204),
    ("webhook-endpoint", "get"): (BILLERS | {Role.ADMIN}, 200),
    ("webhook-endpoint", "put"): (BILLERS, 200),
    ("webhook-endpoint", "delete"): (BILLERS, 204),
    ("webhook-delivery-list", "get"): (BILLERS | {Role.ADMIN}, 200),
    ("webhook-delivery-detail", "get"): (BILLERS | {Role.ADMIN}, 200),
    # Spend caps: owners and billing members set them; admins read. A cap exists before (Target).
    ("spend-caps", "get"): (BILLERS | {Role.ADMIN}, 200),
    ("spend-cap-organization", "put"): (BILLERS, 200),
    ("spend-cap-organization", "delete"): (BILLERS, 204),
    ("spend-cap-cluster", "put"): (BILLERS, 200),
    ("spend-cap-cluster", "delete"): (BILLERS, 204),
    # Usage exports: whoever reads billing. No bucket is configured here, so a request past the
    # role check is refused as not configured (409), which is what shows the check let it by.
    ("usage-export-list", "get"): (BILLERS | {Role.ADMIN}, 200),
    ("usage-export-list", "post"): (BILLERS | {Role.ADMIN}, 409),
    ("usage-export-detail", "get"): (BILLERS | {Role.ADMIN}, 200),
    # The tier recommendation reads the cluster's usage: whoever reads clusters.
    ("cluster-recommendation", "get"): (BUILDERS | {Role.VIEWER}, 200),
}


def test_the_matrix_covers_every_organization_route_and_method():
    found = {
        (route.name, method)
        for route in api_routes()
        if "org" in route.kwargs
        for method in route.methods
    }
    assert found == set(MATRIX)


class Target:
    """Makes a fresh object for each call, so one call's change cannot mask another's."""

    def __init__(self, organization):
        self.organization = organization
        self.owner = UserFactory()
        add_member(organization, Role.OWNER, self.owner)
        self.counter = itertools.count()
        with tenant_scope(organization):
            actor = Actor(user=self.owner)
            budget_set(organization=organization, actor=actor, monthly_micros=10_000_000)
            endpoint_set(organization=organization, actor=actor, url="https://8.8.8.8/hook")
            cap_set(organization=organization, actor=actor, monthly_micros=10**9)

    def id_for(self, name: str) -> str:
        org = self.organization
        with tenant_scope(org):
            if name.startswith("member-"):
                return add_member(org, Role.DEVELOPER).public_id
            if name.startswith("invitation-"):
                invitation, _ = services.invitation_create(
                    organization=org,
                    email=f"invitee{next(self.counter)}@example.com",
                    role=Role.VIEWER,
                    actor=Actor(user=self.owner),
                    actor_role=Role.OWNER,
                    accept_url_base="http://testserver/invitations/",
                )
                return invitation.public_id
            if name.startswith("api-key-"):
                return make_api_key(org, Role.VIEWER)[0].public_id
            if name.startswith("audit-event-"):
                return AuditEvent.objects.first().public_id
            if name.startswith(("topic-", "credential-")):
                child = self.child(name.split("-")[0])
                return child.name if name.startswith("topic-") else child.public_id
            if name.startswith("invoice-"):
                month = next(self.counter) % 12 + 1
                invoice = invoice_record(organization=org, year=2025, month=month, lines=[])
                return invoice.public_id
            if name.startswith("webhook-delivery-"):
                alert = BudgetAlert.objects.create(
                    organization=org,
                    period_start=datetime(2026, 11, 1, tzinfo=UTC),
                    threshold=str(next(self.counter) + 1),
                    kind=BudgetAlertKind.THRESHOLD,
                    budget_micros=10_000_000,
                    month_to_date_micros=1,
                    forecast_micros=1,
                    fired_at=datetime(2026, 11, 2, tzinfo=UTC),
                )
                return WebhookDelivery.objects.create(
                    organization=org,
                    alert=alert,
                    event_type=alert.kind,
                    body="{}",
                    next_attempt_at=alert.fired_at,
                ).public_id
            if name.startswith("usage-export-"):
                return UsageExport.objects.create(
                    organization=org,
                    period_start=datetime(2026, 10, 1, tzinfo=UTC),
                    trigger=ExportTrigger.REQUEST,
                    bucket="exports",
                    prefix=f"usage/{org.public_id}/2026/10/x{next(self.counter)}/",
                ).public_id
            if name.startswith(("cluster-", "operation-")):
                cluster, operation = make_cluster(org, name=f"c{next(self.counter)}")
                return (cluster if name.startswith("cluster-") else operation).public_id
        raise AssertionError(f"no target for {name}")

    @property
    def cluster(self):
        if not hasattr(self, "_cluster"):
            self._cluster = make_cluster(self.organization, name="matrix")[0]
        return self._cluster

    def child(self, kind: str):
        from clusters import services as cluster_services

        actor = Actor(user=self.owner)
        n = next(self.counter)
        if kind == "topic":
            return cluster_services.topic_create(
                cluster=self.cluster, actor=actor, name=f"t{n}", partitions=1
            )[0]
        return cluster_services.credential_create(cluster=self.cluster, actor=actor, name=f"c{n}")[
            0
        ]

    def body_for(self, name: str, method: str) -> dict:
        n = next(self.counter)
        return {
            ("organization-detail", "patch"): {"name": f"Renamed {n}"},
            ("member-detail", "patch"): {"role": Role.VIEWER},
            ("invitation-list", "post"): {"email": f"new{n}@example.com", "role": Role.VIEWER},
            ("api-key-list", "post"): {"name": f"ci {n}", "role": Role.VIEWER},
            ("cluster-list", "post"): {
                "name": f"new {n}",
                "type": "serverless",
                "region": "eu-west-1",
            },
            ("cluster-detail", "patch"): {"name": f"renamed {n}"},
            ("topic-list", "post"): {"name": f"new{n}", "partitions": 1},
            ("topic-detail", "patch"): {"partitions": 2},
            ("credential-list", "post"): {"name": f"app {n}"},
            ("credential-detail", "patch"): {"producer_byte_rate": 1_000_000},
            ("consumer-group-reset-offsets", "post"): {"to": "earliest"},
            ("billing-account", "put"): {
                "email": f"ap{n}@example.com",
                "name": "Acme",
                "address_line1": "1 Main Street",
                "address_line2": "",
                "city": "Springfield",
                "postal_code": "12345",
                "country": "US",
                "tax_id": "",
                "currency": "usd",
            },
            ("billing-account", "patch"): {"city": f"Springfield {n}"},
            ("budget", "put"): {"monthly_usd": f"{n + 1}.50"},
            ("webhook-endpoint", "put"): {"url": "https://8.8.8.8/hook"},
            ("spend-cap-organization", "put"): {"monthly_cap_usd": f"{n + 100}"},
            ("spend-cap-cluster", "put"): {"monthly_cap_usd": f"{n + 50}.25"},
            ("usage-export-list", "post"): {"month": "2026-10"},
        }.get((name, method), {})


@pytest.mark.parametrize("principal", ["member", "api key"])
@pytest.mark.parametrize("role", Role.values)
def test_role_matrix(role, principal, org_with_owner):
    organization, _ = org_with_owner
    make_cell()
    target = Target(organization)
    outcomes = {}
    for (name, method), (allowed, success) in MATRIX.items():
        if principal == "member":
            client = session_client(add_member(organization, role).user)
        else:
            client = key_client(make_api_key(organization, role)[1])
        kwargs = {"org": organization.public_id}
        with_cluster = ("cluster-usage", "cluster-recommendation", "spend-cap-cluster")
        if name.startswith(("topic-", "credential-", "consumer-group-")) or name in with_cluster:
            kwargs["cluster"] = target.cluster.public_id
        suffixes = ("-detail", "-retry", "-rotate", "-lines-csv")
        if name.startswith("consumer-group-") and name != "consumer-group-list":
            kwargs["group"] = "readers"
        elif name.endswith(suffixes) and name != "organization-detail":
            key = "name" if name.startswith("topic-") else "id"
            with tenant_scope(organization):
                kwargs[key] = target.id_for(name)
        url = reverse(name, kwargs=kwargs)
        response = getattr(client, method)(url, target.body_for(name, method), format="json")
        if role not in allowed:
            expected = 403
        elif principal == "api key" and name == "my-membership":
            expected = 404  # a key is not a member: it has no membership to show or leave
        else:
            expected = success
        outcomes[(name, method)] = (response.status_code, expected)
        if expected == 403:
            assert response.json()["code"] == "permission_denied"
    wrong = {k: v for k, v in outcomes.items() if v[0] != v[1]}
    assert wrong == {}, "(got, expected) per endpoint"
