"""Invitations: created by a member who may grant the role, sent by e-mail after commit,
revoked, accepted or declined by the invited person."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from foundation.errors import Conflict, InvalidInput, NotPermitted
from foundation.tasks import enqueue_on_commit

from .. import selectors, tokens
from ..audit import Actor, audit_record
from ..models import Invitation, Membership, Organization, User
from ..roles import Role, can_grant
from ..scoping import tenant_scope
from .names import a_role


@transaction.atomic
def invitation_create(
    *,
    organization: Organization,
    email: str,
    role: str,
    actor: Actor,
    actor_role: str,
    accept_url_base: str,
) -> tuple[Invitation, str]:
    """Invite someone by e-mail. Returns the invitation and its token (mailed, never stored)."""
    email = User.objects.normalize_email(email).strip().lower()
    if role not in Role.values:
        raise InvalidInput(f"Unknown role {role!r}", field="role")
    if not can_grant(actor_role, role):
        raise NotPermitted(f"{a_role(actor_role).capitalize()} cannot invite {a_role(role)}")
    if Membership.objects.filter(organization=organization, user__email__iexact=email).exists():
        raise Conflict(f"{email} is already a member", field="email")
    # An expired invitation no longer holds the address's one pending slot.
    Invitation.objects.filter(
        organization=organization,
        email=email,
        state=Invitation.State.PENDING,
        expires_at__lte=timezone.now(),
    ).update(state=Invitation.State.EXPIRED)
    token = tokens.new_invitation_token()
    try:
        with transaction.atomic():
            invitation = Invitation.objects.create(
                organization=organization,
                email=email,
                role=role,
                token_digest=tokens.digest(token),
                invited_by=actor.user,
            )
    except IntegrityError:
        raise Conflict(f"{email} already has a pending invitation", field="email") from None
    audit_record(
        organization=organization,
        actor=actor,
        action="invitation.created",
        target=invitation,
        after={"email": email, "role": role},
    )
    accept_url = f"{accept_url_base.rstrip('/')}/{token}/"
    enqueue_on_commit(
        "tenants.tasks.send_invitation_email",
        organization=organization.public_id,
        invitation=invitation.public_id,
        inviter=actor.label,
        accept_url=accept_url,
    )
    return invitation, token


def invitation_send_email(*, invitation: Invitation, inviter: str, accept_url: str) -> bool:
    """Mail the invitation, unless it was answered or revoked meanwhile. Runs in a worker."""
    if invitation.effective_state != Invitation.State.PENDING:
        return False
    context = {
        "organization": invitation.organization,
        "role": invitation.get_role_display(),
        "inviter": inviter,
        "accept_url": accept_url,
        "expires_at": invitation.expires_at,
    }
    send_mail(
        subject=f"You are invited to {invitation.organization.name} on Sluice",
        message=render_to_string("tenants/email/invitation.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[invitation.email],
    )
    return True


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor: Actor) -> Invitation:
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.effective_state != Invitation.State.PENDING:
        raise Conflict(f"The invitation is {invitation.effective_state}, not pending")
    invitation.state = Invitation.State.REVOKED
    invitation.responded_at = timezone.now()
    invitation.save(update_fields=["state", "responded_at"])
    audit_record(
        organization=invitation.organization,
        actor=actor,
        action="invitation.revoked",
        target=invitation,
        before={"state": "pending"},
        after={"state": "revoked"},
    )
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, user: User) -> Membership:
    invitation = selectors.invitation_for_token(token=token, user=user, lock=True)
    organization = invitation.organization
    with tenant_scope(organization):
        if Membership.objects.filter(user=user).exists():
            raise Conflict("You are already a member of this organization")
        membership = Membership.objects.create(
            user=user, organization=organization, role=invitation.role
        )
        invitation.state = Invitation.State.ACCEPTED
        invitation.responded_at = timezone.now()
        invitation.save(update_fields=["state", "responded_at"])
        audit_record(
            organization=organization,
            actor=Actor(user=user),
            action="invitation.accepted",
            target=invitation,
            after={"email": user.email, "role": invitation.role, "member": membership.public_id},
        )
    return membership


@transaction.atomic
def invitation_decline(*, token: str, user: User) -> Invitation:
    invitation = selectors.invitation_for_token(token=token, user=user, lock=True)
    with tenant_scope(invitation.organization):
        invitation.state = Invitation.State.DECLINED
        invitation.responded_at = timezone.now()
        invitation.save(update_fields=["state", "responded_at"])
        audit_record(
            organization=invitation.organization,
            actor=Actor(user=user),
            action="invitation.declined",
            target=invitation,
            after={"state": "declined"},
        )
    return invitation
