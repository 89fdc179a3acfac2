"""The tenant in scope, and the manager that refuses to query without one.

Every query of a tenant-owned model goes through ``Model.objects``, which filters by the
organization in scope and raises ``TenantScopeMissing`` when there is none. The API base class
enters the scope for each request; a Celery task enters it explicitly with ``tenant_scope``.
``Model.unscoped_all_tenants`` reads every tenant's rows: admin, migrations and fleet-wide jobs
only.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from django.db import models

if TYPE_CHECKING:
    from .models import Organization

_current_tenant: contextvars.ContextVar[Organization | None] = contextvars.ContextVar(
    "sluice_current_tenant", default=None
)


class TenantScopeMissing(RuntimeError):
    """A tenant-owned model was queried with no organization in scope."""


class TenantScopeViolation(RuntimeError):
    """A write would put a row in an organization other than the one in scope."""


@contextmanager
def tenant_scope(organization: Organization) -> Iterator[Organization]:
    if organization is None or organization.pk is None:
        raise TenantScopeMissing("tenant_scope needs a saved organization")
    token = _current_tenant.set(organization)
    try:
        yield organization
    finally:
        _current_tenant.reset(token)


def enter_tenant_scope(organization: Organization) -> contextvars.Token:
    """For code that cannot use a ``with`` block (the API base class); pair with leave."""
    return _current_tenant.set(organization)


def leave_tenant_scope(token: contextvars.Token) -> None:
    _current_tenant.reset(token)


def current_tenant() -> Organization:
    organization = _current_tenant.get()
    if organization is None:
        raise TenantScopeMissing(
            "No organization in scope: enter one with tenants.scoping.tenant_scope(org). "
            "Fleet-wide code that really means every tenant uses Model.unscoped_all_tenants."
        )
    return organization


def current_tenant_or_none() -> Organization | None:
    return _current_tenant.get()


class TenantScopedQuerySet(models.QuerySet):
    pass


class TenantScopedManager(models.Manager.from_queryset(TenantScopedQuerySet)):
    """The default manager of tenant-owned models: only the tenant in scope's rows."""

    def get_queryset(self) -> TenantScopedQuerySet:
        return super().get_queryset().filter(organization=current_tenant())

    def none(self) -> TenantScopedQuerySet:
        # An empty queryset shows no tenant anything; schema generators ask for one.
        return super().get_queryset().none()


class TenantOwnedModel(models.Model):
    """Base of every model that belongs to one organization (a field named ``organization``)."""

    objects = TenantScopedManager()
    # Reads every tenant's rows. Admin, migrations and fleet-wide jobs only.
    unscoped_all_tenants = models.Manager()  # noqa: DJ012 - managers only, no fields

    class Meta:
        abstract = True
        base_manager_name = "unscoped_all_tenants"

    def save(self, *args, **kwargs) -> None:
        in_scope = current_tenant_or_none()
        if in_scope is not None and self.organization_id != in_scope.pk:
            raise TenantScopeViolation(
                f"{type(self).__name__} of organization {self.organization_id} written while "
                f"organization {in_scope.pk} is in scope"
            )
        super().save(*args, **kwargs)

    # Uniqueness is checked through the default manager: check it within the row's own tenant,
    # so forms (the admin's included) validate outside a request's scope too.
    def validate_unique(self, exclude=None) -> None:
        with tenant_scope(self.organization):
            super().validate_unique(exclude=exclude)

    def validate_constraints(self, exclude=None) -> None:
        with tenant_scope(self.organization):
            super().validate_constraints(exclude=exclude)
