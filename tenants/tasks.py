"""Celery tasks of the tenancy layer: thin, loading by id and calling a service.

A task that works for one organization derives from ``TenantTask``: it is called with the
organization's public id and runs inside that tenant's scope, so the scoped managers work as
they do in a request. Fleet-wide housekeeping reads across tenants with the unscoped managers.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from smtplib import SMTPException

from celery import Task, shared_task

from . import idempotency, services
from .models import Invitation, Organization
from .scoping import tenant_scope


@contextmanager
def tenant_scope_of(organization_public_id: str) -> Iterator[Organization]:
    """Load an organization by its public id and enter its scope (tasks get ids, not rows)."""
    with tenant_scope(Organization.objects.get(public_id=organization_public_id)) as organization:
        yield organization


class TenantTask(Task):
    """Call with ``organization=<public id>``; the body receives the Organization, in scope."""

    abstract = True

    def __call__(self, *args, organization: str, **kwargs):
        with tenant_scope_of(organization) as scoped:
            return super().__call__(*args, organization=scoped, **kwargs)


@shared_task(
    base=TenantTask,
    name="tenants.tasks.send_invitation_email",
    autoretry_for=(SMTPException, OSError),
    retry_backoff=True,
    max_retries=6,
    ignore_result=True,
)
def send_invitation_email(*, organization, invitation: str, inviter: str, accept_url: str) -> None:
    pending = Invitation.objects.filter(public_id=invitation).first()
    if pending is not None:
        services.invitation_send_email(invitation=pending, inviter=inviter, accept_url=accept_url)


@shared_task(
    name="tenants.tasks.send_signup_email",
    autoretry_for=(SMTPException, OSError),
    retry_backoff=True,
    max_retries=6,
    ignore_result=True,
)
def send_signup_email(
    *, email: str, first_name: str, last_name: str, next_url: str, site_url: str
) -> None:
    services.signup_send_email(
        email=email,
        first_name=first_name,
        last_name=last_name,
        next_url=next_url,
        site_url=site_url,
    )


@shared_task(name="tenants.tasks.purge_idempotency_records")
def purge_idempotency_records() -> int:
    return idempotency.purge_expired()
