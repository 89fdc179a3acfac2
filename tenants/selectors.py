"""Reads of the tenancy layer. Organization-level reads are given the organization."""

from django.db.models import F, FilteredRelation, Q, QuerySet

from controlplane.errors import Conflict, NotFound

from . import tokens
from .models import ApiKey, AuditEvent, Invitation, Membership, Organization, User


def organizations_for_user(*, user: User) -> QuerySet[Organization]:
    """The user's organizations, each annotated with the user's ``role`` in it."""
    return (
        Organization.objects.annotate(
            mine=FilteredRelation("memberships", condition=Q(memberships__user=user))
        )
        .filter(mine__isnull=False)
        .annotate(role=F("mine__role"))
        .order_by("name", "id")
    )


def membership_of(*, user: User, organization: Organization) -> Membership | None:
    return Membership.objects.filter(organization=organization, user=user).first()


def members(*, organization: Organization) -> QuerySet[Membership]:
    return Membership.objects.filter(organization=organization).select_related("user")


def invitations(*, organization: Organization) -> QuerySet[Invitation]:
    return Invitation.objects.filter(organization=organization).select_related("invited_by")


def api_keys(*, organization: Organization) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(organization=organization).select_related("created_by")


def audit_events(*, organization: Organization) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(organization=organization).select_related(
        "actor_user", "actor_api_key"
    )


def invitation_for_token(*, token: str, user: User, lock: bool = False) -> Invitation:
    """The pending invitation a mailed token names, for this user's address only.

    The token alone names the invitation and so its organization: this is the one read of an
    invitation made before a tenant is in scope. ``lock`` (inside a transaction) holds the row
    for the answer that follows.
    """
    invitations = Invitation.unscoped_all_tenants.select_related("organization")
    if lock:
        invitations = invitations.select_for_update()
    invitation = invitations.filter(token_digest=tokens.digest(token)).first()
    if invitation is None or invitation.email.lower() != user.email.lower():
        raise NotFound("No such invitation for your account")
    if invitation.effective_state != Invitation.State.PENDING:
        raise Conflict(f"The invitation is {invitation.effective_state}")
    return invitation
