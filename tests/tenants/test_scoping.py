"""Tenant-owned models refuse to query without an organization in scope."""

import pytest
from django.db import connection, transaction
from django.db.utils import InternalError, ProgrammingError

from tenants.models import AuditEvent, Membership
from tenants.roles import Role
from tenants.scoping import TenantScopeMissing, TenantScopeViolation, tenant_scope
from tests.factories import UserFactory, make_org

pytestmark = pytest.mark.django_db


def test_the_default_manager_refuses_to_query_without_a_tenant():
    make_org()
    with pytest.raises(TenantScopeMissing, match="No organization in scope"):
        list(Membership.objects.all())
    with pytest.raises(TenantScopeMissing):
        Membership.objects.filter(role=Role.OWNER).exists()


def test_the_scope_shows_one_tenant_and_the_escape_hatch_shows_all():
    first, second = make_org(name="First"), make_org(name="Second")
    with tenant_scope(first):
        assert {m.organization_id for m in Membership.objects.all()} == {first.pk}
    with tenant_scope(second):
        assert {m.organization_id for m in Membership.objects.all()} == {second.pk}
    assert Membership.unscoped_all_tenants.count() == 2


def test_writing_into_another_tenant_while_in_scope_is_refused():
    first, second = make_org(name="First"), make_org(name="Second")
    with tenant_scope(first), pytest.raises(TenantScopeViolation):
        Membership.objects.create(organization=second, user=UserFactory(), role=Role.VIEWER)
    assert Membership.unscoped_all_tenants.filter(organization=second).count() == 1


def test_related_managers_stay_in_their_tenant():
    organization = make_org()
    with tenant_scope(organization):
        assert organization.memberships.count() == 1


def test_audit_events_are_append_only_in_postgres():
    organization = make_org()
    event = AuditEvent.unscoped_all_tenants.get(
        organization=organization, action="organization.created"
    )
    with pytest.raises(ValueError, match="append-only"), tenant_scope(organization):
        event.save()
    for statement in (
        "UPDATE tenants_auditevent SET action = 'forged' WHERE id = %s",
        "DELETE FROM tenants_auditevent WHERE id = %s",
    ):
        with (
            pytest.raises((InternalError, ProgrammingError), match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [event.pk])
    event.refresh_from_db()
    assert event.action == "organization.created"
