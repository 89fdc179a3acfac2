"""Nothing one organization's members or keys do can show or touch another's data."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from billing import accounts
from billing.budgets import budget_set
from billing.invoices import LineRecord, invoice_record
from billing.models import (
    BillingAccount,
    Budget,
    BudgetAlert,
    BudgetAlertKind,
    ExportState,
    ExportTrigger,
    Invoice,
    UsageExport,
    UsageHour,
    WebhookDelivery,
    WebhookEndpoint,
)
from billing.services import HourSnapshot, record_hours
from billing.webhook_endpoints import endpoint_set
from clusters import services as cluster_services
from clusters.models import Cluster, Credential, Dimension, Operation, Topic
from tenants import selectors, services
from tenants.audit import Actor
from tenants.models import ApiKey, AuditEvent, Invitation, Membership, Organization, User
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, add_member, make_api_key, make_cluster, make_org
from tests.support.clients import key_client, session_client
from tests.support.isolation import (
    Outsider,
    Victim,
    api_routes,
    find_violations,
    find_web_violations,
    web_routes,
)

pytestmark = pytest.mark.django_db


def _orgs_list_shows_only_own(route, outsider, victim) -> list[str]:
    problems = []
    for kind, client in outsider.clients.items():
        body = client.get("/api/v1/orgs/").content.decode()
        if victim.organization.public_id in body:
            problems.append(f"outsider ({kind}) sees the victim in {route.name}")
    return problems


def _invitation_token_of_someone_else(route, outsider, victim) -> list[str]:
    """An outsider cannot answer the victim's invitation, even holding a token of its own."""
    problems = []
    client = outsider.clients["session"]
    response = client.post("/" + route.route, {"token": "x" * 43}, format="json")
    if response.status_code != 404:
        problems.append(f"outsider answered an unknown invitation: {response.status_code}")
    return problems


ACCOUNT_ROUTES = {
    "organization-list": _orgs_list_shows_only_own,
    "invitation-accept": _invitation_token_of_someone_else,
    "invitation-decline": _invitation_token_of_someone_else,
}


def build_victim() -> Victim:
    owner = UserFactory(email="victim-owner@victim.example")
    organization = make_org(owner=owner, name="Victim Corp")
    member = add_member(organization, Role.DEVELOPER)
    api_key, _ = make_api_key(organization, Role.DEVELOPER)
    with tenant_scope(organization):
        invitation, _ = services.invitation_create(
            organization=organization,
            email="invitee@victim.example",
            role=Role.VIEWER,
            actor=Actor(user=owner),
            actor_role=Role.OWNER,
            accept_url_base="http://testserver/invitations/",
        )
        event = selectors.audit_events(organization=organization).first()
    cluster, operation = make_cluster(organization, name="victim-events")
    with tenant_scope(organization):
        topic, _ = cluster_services.topic_create(
            cluster=cluster, actor=Actor(user=owner), name="victim-orders", partitions=3
        )
        credential, _, _ = cluster_services.credential_create(
            cluster=cluster, actor=Actor(user=owner), name="victim-app"
        )
    # Usage in the ledger, so a usage endpoint that leaked it would show the cluster's id.
    last_hour = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    record_hours([HourSnapshot(cluster.pk, Dimension.INGRESS_BYTES, last_hour, 123_456_789, True)])
    with tenant_scope(organization):
        accounts.billing_account_update(
            organization=organization,
            actor=Actor(user=owner),
            email="payables@victim.example",
            tax_id="VICTIM-TAX-42",
        )
        invoice = invoice_record(
            organization=organization,
            year=last_hour.year,
            month=last_hour.month,
            lines=[
                LineRecord(
                    cluster_public_id=cluster.public_id,
                    cluster_name=cluster.name,
                    dimension=Dimension.INGRESS_BYTES,
                    segment_start=last_hour,
                    segment_end=last_hour + timedelta(hours=1),
                    quantity=123_456_789,
                    unit_price_micros=80_000,
                    per_units=10**9,
                    amount_micros=9_876,
                    amount_cents=1,
                    remainder_micros=-124,
                )
            ],
        )
        line = invoice.lines.get()
        export = victim_export(organization)
        budget_set(organization=organization, actor=Actor(user=owner), monthly_micros=123_000_000)
        endpoint_set(
            organization=organization, actor=Actor(user=owner), url="https://8.8.8.8/victim-hook"
        )
        alert = BudgetAlert.objects.create(
            organization=organization,
            period_start=last_hour.replace(day=1, hour=0),
            threshold="50",
            kind=BudgetAlertKind.THRESHOLD,
            budget_micros=123_000_000,
            month_to_date_micros=61_500_000,
            forecast_micros=61_500_000,
            fired_at=last_hour,
        )
        delivery = WebhookDelivery.objects.create(
            organization=organization,
            alert=alert,
            event_type=alert.kind,
            body="{}",
            next_attempt_at=last_hour,
        )
    return Victim(
        organization=organization,
        objects_by_model={
            Membership: member,
            Invitation: invitation,
            ApiKey: api_key,
            AuditEvent: event,
            Cluster: cluster,
            Operation: operation,
            Topic: topic,
            Credential: credential,
            Invoice: invoice,
            UsageExport: export,
            WebhookDelivery: delivery,
        },
        identifiers=[
            organization.public_id,
            "Victim Corp",
            owner.email,
            member.public_id,
            invitation.public_id,
            api_key.public_id,
            event.public_id,
            cluster.public_id,
            "victim-events",
            operation.public_id,
            "victim-orders",
            credential.public_id,
            credential.username,
            "payables@victim.example",
            "VICTIM-TAX-42",
            invoice.public_id,
            line.public_id,
            "https://8.8.8.8/victim-hook",
            alert.public_id,
            delivery.public_id,
            export.public_id,
            export.prefix,
        ],
    )


def victim_export(organization) -> UsageExport:
    """A done usage export (its objects are never reached: every request is refused first)."""
    month = datetime(2026, 10, 1, tzinfo=UTC)
    prefix = f"usage/{organization.public_id}/2026/10/uexp_victim/"
    return UsageExport.objects.create(
        organization=organization,
        period_start=month,
        trigger=ExportTrigger.REQUEST,
        state=ExportState.DONE,
        bucket="victim-exports",
        prefix=prefix,
        files=[
            {
                "name": "usage-hours",
                "key": prefix + "usage-hours.csv.gz",
                "rows": 1,
                "bytes": 100,
                "sha256": "0" * 64,
                "content_type": "application/gzip",
            }
        ],
    )


def build_outsider() -> Outsider:
    user = UserFactory(email="outsider@elsewhere.example")
    organization = make_org(owner=user, name="Elsewhere Ltd")
    _, key = make_api_key(organization, Role.OWNER)
    return Outsider(
        organization=organization,
        clients={"session": session_client(user), "api key": key_client(key)},
    )


def victim_state(victim: Victim) -> dict:
    organization = Organization.objects.get(pk=victim.organization.pk)
    with tenant_scope(organization):
        return {
            "name": organization.name,
            "members": sorted(Membership.objects.values_list("public_id", "role")),
            "invitations": sorted(Invitation.objects.values_list("public_id", "state")),
            "keys": sorted(ApiKey.objects.values_list("public_id", "revoked_at")),
            "audit": AuditEvent.objects.count(),
            "clusters": sorted(
                Cluster.objects.values_list(
                    "public_id", "name", "generation", "delete_requested_at", "deleted_at"
                )
            ),
            "topics": sorted(Topic.objects.values_list("name", "partitions", "deleted_at")),
            "credentials": sorted(
                Credential.objects.values_list("public_id", "password_encrypted", "deleted_at")
            ),
            "usage": sorted(UsageHour.objects.values_list("dimension", "hour", "quantity")),
            "billing account": list(BillingAccount.objects.values()),
            "invoices": sorted(Invoice.objects.values_list("public_id", "state", "total_micros")),
            "exports": sorted(UsageExport.objects.values_list("public_id", "state")),
            "budget": list(Budget.objects.values("monthly_micros", "thresholds")),
            "webhook": list(WebhookEndpoint.objects.values("url", "secret_sealed")),
            "deliveries": sorted(WebhookDelivery.objects.values_list("public_id", "state")),
        }


def test_every_api_route_is_isolated_between_organizations():
    victim, outsider = build_victim(), build_outsider()
    before = victim_state(victim)

    violations, requests = find_violations(
        urlconf=None,
        anonymous=APIClient(),
        outsider=outsider,
        victim=victim,
        account_checks=ACCOUNT_ROUTES,
    )

    assert violations == [], "\n".join(violations)
    assert requests > 50  # the walk really covered the API
    assert victim_state(victim) == before  # and changed nothing


def test_the_walk_finds_every_organization_route():
    names = {route.name for route in api_routes()}
    assert {
        "organization-detail",
        "my-membership",
        "member-list",
        "member-detail",
        "invitation-list",
        "invitation-detail",
        "api-key-list",
        "api-key-detail",
        "audit-event-list",
        "audit-event-detail",
        "organization-usage",
        "cluster-usage",
        "billing-account",
        "invoice-list",
        "invoice-detail",
        "invoice-lines-csv",
    } <= names


def test_an_endpoint_written_without_the_base_class_is_caught():
    victim, outsider = build_victim(), build_outsider()
    violations, _ = find_violations(
        urlconf="tests.support.leaky_urls",
        anonymous=APIClient(),
        outsider=outsider,
        victim=victim,
        account_checks=ACCOUNT_ROUTES,
    )
    leaky = [v for v in violations if "leaky" in v or "LeakyMemberEmailsView" in v]
    assert any("is not an OrganizationScopedView" in v for v in leaky), violations
    assert any("outsider (session) GET leaky[victim org]: 200 leaks" in v for v in leaky), leaky
    assert len(violations) == len(leaky)  # everything else is still clean


def test_a_view_cannot_override_the_scoping_methods():
    from tenants.api.base import OrganizationScopedView

    with pytest.raises(TypeError, match="may not override get_queryset"):

        class Sneaky(OrganizationScopedView):
            scope_map = {"GET": "org:read"}

            def get_queryset(self):
                return Membership.unscoped_all_tenants.all()

    with pytest.raises(TypeError, match="may not override permission_classes"):

        class Open(OrganizationScopedView):
            scope_map = {"GET": "org:read"}
            permission_classes = []

    with pytest.raises(TypeError, match="must declare scope_map"):

        class Unscoped(OrganizationScopedView):
            pass


# Posted to every page, filled in so that a page left unguarded would act on it.
def web_form_data(victim: Victim) -> dict[str, str]:
    return {
        "name": "x",
        "email": "x@elsewhere.example",
        "role": Role.VIEWER,
        "type": "serverless",
        "region": "eu-west-1",
        "rename-name": "stolen",
        "resize-capacity_units": "2",
        "type-type": "standard",
        "delete-confirm_name": victim.objects_by_model[Cluster].name,
        "topic-name": "t",
        "topic-partitions": "1",
        "partitions": "9",
        # The topic page's settings form, complete and valid.
        "retention": "1",
        "retention_unit": "days",
        "cleanup_policy": "compact",
        "credential-name": "c",
        # The billing account's form, complete and valid.
        "city": "Stolen",
        "country": "FR",
        "currency": "usd",
        "month": "2026-10",
    }


def build_web_outsider() -> Outsider:
    """The outsider with a web session, and a cluster of their own to name in the URLs."""
    outsider = build_outsider()
    user = User.objects.get(email="outsider@elsewhere.example")
    outsider.web = Client()
    outsider.web.force_login(user)
    own_cluster, _ = make_cluster(outsider.organization, name="mine")
    outsider.objects_by_model[Cluster] = own_cluster
    return outsider


def outsider_state(outsider: Outsider) -> dict:
    with tenant_scope(outsider.organization):
        return {
            "clusters": sorted(Cluster.objects.values_list("name", "generation", "deleted_at")),
            "topics": Topic.objects.count(),
            "credentials": Credential.objects.count(),
            "invitations": Invitation.objects.count(),
            "keys": ApiKey.objects.count(),
            "billing account": list(BillingAccount.objects.values("city")),
        }


def test_every_web_page_of_an_organization_is_isolated_between_organizations():
    victim, outsider = build_victim(), build_web_outsider()
    before, own_before = victim_state(victim), outsider_state(outsider)

    violations, requests = find_web_violations(
        urlconf=None,
        anonymous=Client(),
        outsider=outsider,
        victim=victim,
        form_data=web_form_data(victim),
    )

    assert violations == [], "\n".join(violations)
    assert requests > 100  # the walk really covered the web UI
    assert victim_state(victim) == before  # and changed nothing
    assert outsider_state(outsider) == own_before  # not even in the outsider's organization


def test_the_web_walk_finds_every_organization_page():
    names = {route.name for route in web_routes()}
    assert {
        "tenants:members",
        "tenants:leave",
        "tenants:member-role",
        "tenants:member-remove",
        "tenants:invitations",
        "tenants:invitation-revoke",
        "tenants:api-keys",
        "tenants:api-key-revoke",
        "tenants:audit",
        "clusters:list",
        "clusters:detail",
        "clusters:rename",
        "clusters:resize",
        "clusters:change-tier",
        "clusters:retry",
        "clusters:delete",
        "clusters:topic-create",
        "clusters:topic-partitions",
        "clusters:topic-detail",
        "clusters:topic-settings",
        "clusters:topic-delete",
        "clusters:credential-create",
        "clusters:credential-rotate",
        "clusters:credential-delete",
        "billing:account",
        "billing:invoice",
    } <= names


def test_a_page_written_without_the_gate_is_caught():
    victim, outsider = build_victim(), build_web_outsider()
    violations, _ = find_web_violations(
        urlconf="tests.support.leaky_web_urls",
        anonymous=Client(),
        outsider=outsider,
        victim=victim,
        form_data=web_form_data(victim),
    )
    leaky = [v for v in violations if "leaky-web" in v]
    assert any("is not wrapped by organization_view" in v for v in leaky), violations
    assert any("outsider GET leaky-web[victim org]: 200 leaks" in v for v in leaky), leaky
    assert len(violations) == len(leaky)  # everything else is still clean
