"""Organizations and their members: creation (the creator is the owner), rename, closing, role
changes and removal, with at least one owner always left; a member who leaves takes their
API keys with them."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from foundation.errors import ConfirmationMismatch, InvalidInput, LastOwner, NotFound, NotPermitted

from ..audit import Actor, audit_record, snapshot
from ..closing_checks import check_closing
from ..models import ApiKey, Invitation, Membership, Organization, User
from ..roles import Role, can_grant
from ..scoping import tenant_scope
from .api_keys import revoke_key
from .names import a_role, clean_name


@transaction.atomic
def organization_create(*, name: str, owner: User) -> Organization:
    """Create an organization; its creator becomes its owner."""
    name = clean_name(name)
    organization = Organization.objects.create(name=name)
    with tenant_scope(organization):
        membership = Membership.objects.create(
            user=owner, organization=organization, role=Role.OWNER
        )
        actor = Actor(user=owner)
        audit_record(
            organization=organization,
            actor=actor,
            action="organization.created",
            target=organization,
            after={"name": name},
        )
        audit_record(
            organization=organization,
            actor=actor,
            action="member.added",
            target=membership,
            after={"email": owner.email, "role": Role.OWNER},
        )
    return organization


@transaction.atomic
def organization_update(*, organization: Organization, actor: Actor, name: str) -> Organization:
    before = snapshot(organization, ["name"])
    organization.name = clean_name(name)
    organization.save(update_fields=["name"])
    audit_record(
        organization=organization,
        actor=actor,
        action="organization.updated",
        target=organization,
        before=before,
        after=snapshot(organization, ["name"]),
    )
    return organization


@transaction.atomic
def organization_close(
    *, organization: Organization, actor: Actor, actor_role: str, confirm_name: str
) -> Organization:
    """Close the organization for good: its members and keys lose access at once (it answers
    as unknown from then on), its API keys and pending invitations are revoked. Only an owner
    may, typing the organization's name to confirm, and only once every closing check agrees
    (``tenants.closing_checks``: no cluster left, say). Nothing is deleted: the final invoice
    is made later from the ledger, and the records are kept (see the README)."""
    if actor_role != Role.OWNER:
        raise NotPermitted("Only an owner may close the organization")
    # Held until commit: a second close waits here, then finds the organization gone.
    organization = Organization.objects.select_for_update().get(pk=organization.pk)
    if organization.is_closed:
        raise NotFound("No such organization")
    if confirm_name.strip() != organization.name:
        raise ConfirmationMismatch(
            "Type the organization's name exactly to confirm closing it", field="confirm"
        )
    check_closing(organization)
    organization.closed_at = timezone.now()
    organization.closed_by = actor.user or (actor.api_key and actor.api_key.created_by)
    organization.save(update_fields=["closed_at", "closed_by"])
    keys = ApiKey.objects.select_for_update().filter(
        organization=organization, revoked_at__isnull=True
    )
    for api_key in keys:
        revoke_key(api_key, actor=actor, reason="organization_closed")
    invitations = Invitation.objects.filter(
        organization=organization, state=Invitation.State.PENDING
    ).update(state=Invitation.State.REVOKED, responded_at=organization.closed_at)
    audit_record(
        organization=organization,
        actor=actor,
        action="organization.closed",
        target=organization,
        before={"name": organization.name},
        after={
            "closed_at": organization.closed_at.isoformat(),
            "api_keys_revoked": len(keys),
            "invitations_revoked": invitations,
        },
    )
    return organization


# Members -------------------------------------------------------------------------------------


@transaction.atomic
def membership_change_role(
    *, membership: Membership, role: str, actor: Actor, actor_role: str
) -> Membership:
    membership = _locked(membership)
    if role not in Role.values:
        raise InvalidInput(f"Unknown role {role!r}", field="role")
    if membership.role == role:
        return membership
    if not (can_grant(actor_role, membership.role) and can_grant(actor_role, role)):
        raise NotPermitted(
            f"{a_role(actor_role).capitalize()} cannot change {a_role(membership.role)}"
            f" into {a_role(role)}"
        )
    if membership.role == Role.OWNER:
        _ensure_another_owner(membership)
    before = snapshot(membership, ["role"])
    membership.role = role
    membership.save(update_fields=["role"])
    audit_record(
        organization=membership.organization,
        actor=actor,
        action="member.role_changed",
        target=membership,
        before=before,
        after={"role": role, "email": membership.user.email},
    )
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, actor: Actor, actor_role: str) -> None:
    """Remove a member; members may always remove themselves (leave), but the last owner may
    not leave."""
    membership = _locked(membership)
    leaving = actor.user is not None and actor.user.pk == membership.user_id
    if not leaving and not can_grant(actor_role, membership.role):
        raise NotPermitted(
            f"{a_role(actor_role).capitalize()} cannot remove {a_role(membership.role)}"
        )
    if membership.role == Role.OWNER:
        _ensure_another_owner(membership)
    before = {"email": membership.user.email, "role": membership.role}
    membership.delete()
    audit_record(
        organization=membership.organization,
        actor=actor,
        action="member.left" if leaving else "member.removed",
        target=membership,
        before=before,
    )
    # Their keys acted for them: they end here, and do not come back if the person is invited
    # again (authentication refuses them meanwhile too, the creator being no member).
    keys = ApiKey.objects.select_for_update().filter(
        organization=membership.organization, created_by=membership.user, revoked_at__isnull=True
    )
    for api_key in keys:
        revoke_key(api_key, actor=actor, reason="creator_left")


def _locked(membership: Membership) -> Membership:
    # Row locks on every owner of the organization serialise concurrent demotions/removals,
    # so two owners cannot demote each other at once and leave none.
    owners = Membership.objects.select_for_update().filter(
        organization=membership.organization, role=Role.OWNER
    )
    list(owners)
    return Membership.objects.select_for_update().select_related("user").get(pk=membership.pk)


def _ensure_another_owner(membership: Membership) -> None:
    others = (
        Membership.objects.filter(organization=membership.organization, role=Role.OWNER)
        .exclude(pk=membership.pk)
        .exists()
    )
    if not others:
        raise LastOwner(
            "This member is the organization's last owner: make someone else an owner first"
        )
