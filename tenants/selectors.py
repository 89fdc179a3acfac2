"""Reads of the tenancy layer. Organization-level reads are given the organization."""

from django.db.models import F, FilteredRelation, OuterRef, Q, QuerySet, Subquery

from foundation.compiled import CompiledRead
from foundation.errors import Conflict, NotFound, NotPermitted

from . import tokens
from .models import ApiKey, AuditEvent, Invitation, Membership, Organization, User
from .roles import lesser_role


def organizations_for_user(*, user: User) -> QuerySet[Organization]:
    """The user's organizations (closed ones are gone), each annotated with the user's
    ``role`` in it."""
    return (
        Organization.objects.filter(closed_at__isnull=True)
        .annotate(mine=FilteredRelation("memberships", condition=Q(memberships__user=user)))
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
    """The organization's keys, each with its creator's current role (for ``effective_role``)."""
    return _with_creator_role(
        ApiKey.objects.filter(organization=organization).select_related("created_by")
    )


def _with_creator_role(queryset: QuerySet[ApiKey]) -> QuerySet[ApiKey]:
    """``creator_role``: the role, now, of the person a key acts for; None once they are no
    longer a member or their account is deactivated."""
    creator_role = Membership.unscoped_all_tenants.filter(
        organization=OuterRef("organization_id"),
        user=OuterRef("created_by_id"),
        user__is_active=True,
    ).values("role")[:1]
    return queryset.annotate(creator_role=Subquery(creator_role))


def effective_role(api_key: ApiKey) -> str | None:
    """The role a key acts with: the lesser of its own and its creator's current role; None
    when the creator is gone or the two share no role (the key is refused)."""
    return api_key.creator_role and lesser_role(api_key.role, api_key.creator_role)


def _authentication_read(prefix: str) -> QuerySet:
    return (
        _with_creator_role(ApiKey.unscoped_all_tenants.filter(prefix=prefix))
        .order_by("pk")
        .values_list(
            *(field.attname for field in _API_KEY_FIELDS),
            "creator_role",
            *(f"organization__{field.attname}" for field in _ORGANIZATION_FIELDS),
        )[:1]
    )


_API_KEY_FIELDS = ApiKey._meta.concrete_fields
_ORGANIZATION_FIELDS = Organization._meta.concrete_fields
# Every API request reads its key: compiled once per connection (foundation.compiled).
_AUTHENTICATION_READ = CompiledRead(_authentication_read)


def api_key_for_authentication(*, prefix: str) -> ApiKey | None:
    """The key with this prefix, its organization, and what it may do now, in one query.

    A key acts for the person who created it (for a key minted by a key, the person behind that
    key): ``creator_role`` is that person's role in the organization now, None once they are no
    longer a member or their account is deactivated; ``effective_role`` is the lesser of the
    key's own role and that one. The key names its organization, so this reads across tenants.
    """
    rows = _AUTHENTICATION_READ.rows(prefix)
    if not rows:
        return None
    row = rows[0]
    split = len(_API_KEY_FIELDS)
    api_key = ApiKey.from_db("default", None, row[:split])
    api_key.creator_role = row[split]
    api_key.organization = Organization.from_db("default", None, row[split + 1 :])
    api_key.effective_role = effective_role(api_key)
    return api_key


def api_key_role(*, api_key: ApiKey) -> str:
    """The role an authenticated key acts with, refused when its creator's role now shares none
    with it."""
    if api_key.effective_role is None:
        raise NotPermitted(
            f"This key's role ({api_key.role}) is outside what its creator may do now"
            f" ({api_key.creator_role}): it acts with no role until the creator's role covers it"
        )
    return api_key.effective_role


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
