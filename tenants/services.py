"""Writes of the tenancy layer. Keyword-only, atomic, and each one leaves an audit event."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from controlplane.errors import Conflict, InvalidInput, LastOwner, NotPermitted

from . import selectors, tokens
from .audit import Actor, audit_record, snapshot
from .models import ApiKey, Invitation, Membership, Organization, User
from .roles import Role, can_grant
from .scoping import tenant_scope

MAX_API_KEY_LIFETIME_DAYS = 365


# Accounts ------------------------------------------------------------------------------------


def user_signup(*, email: str, password: str, first_name: str = "", last_name: str = "") -> User:
    email = User.objects.normalize_email(email).lower()
    taken = Conflict("An account with this e-mail address already exists", field="email")
    if User.objects.filter(email__iexact=email).exists():
        raise taken
    try:
        with transaction.atomic():
            return User.objects.create_user(
                email, password, first_name=first_name.strip(), last_name=last_name.strip()
            )
    except IntegrityError:  # signed up twice at once
        raise taken from None


# Organizations -------------------------------------------------------------------------------


@transaction.atomic
def organization_create(*, name: str, owner: User) -> Organization:
    """Create an organization; its creator becomes its owner."""
    name = _clean_name(name)
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
    organization.name = _clean_name(name)
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
            f"{_a(actor_role).capitalize()} cannot change {_a(membership.role)} into {_a(role)}"
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
        raise NotPermitted(f"{_a(actor_role).capitalize()} cannot remove {_a(membership.role)}")
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


# Invitations ---------------------------------------------------------------------------------


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
        raise NotPermitted(f"{_a(actor_role).capitalize()} cannot invite {_a(role)}")
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
    from .tasks import send_invitation_email

    transaction.on_commit(
        lambda: send_invitation_email.delay(
            organization=organization.public_id,
            invitation=invitation.public_id,
            inviter=actor.label,
            accept_url=accept_url,
        )
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


# API keys ------------------------------------------------------------------------------------


@transaction.atomic
def api_key_create(
    *,
    organization: Organization,
    name: str,
    role: str,
    actor: Actor,
    actor_role: str,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Create an API key. Returns the key record and the whole key, which is shown once."""
    if role not in Role.values:
        raise InvalidInput(f"Unknown role {role!r}", field="role")
    if not can_grant(actor_role, role):
        raise NotPermitted(
            f"{_a(actor_role).capitalize()} cannot create a key with the {role} role"
        )
    now = timezone.now()
    if expires_at is not None:
        if expires_at <= now:
            raise InvalidInput("expires_at must be in the future", field="expires_at")
        if (expires_at - now).days > MAX_API_KEY_LIFETIME_DAYS:
            raise InvalidInput(
                f"API keys live at most {MAX_API_KEY_LIFETIME_DAYS} days", field="expires_at"
            )
    prefix, key = tokens.new_api_key()
    api_key = ApiKey.objects.create(
        organization=organization,
        name=_clean_name(name),
        role=role,
        prefix=prefix,
        key_digest=tokens.digest(key),
        created_by=actor.user,
        expires_at=expires_at,
    )
    audit_record(
        organization=organization,
        actor=actor,
        action="api_key.created",
        target=api_key,
        after=snapshot(api_key, ["name", "role", "prefix", "expires_at"]),
    )
    return api_key, key


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: Actor, actor_role: str) -> ApiKey:
    api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if not can_grant(actor_role, api_key.role):
        raise NotPermitted(
            f"{_a(actor_role).capitalize()} cannot revoke a key with the {api_key.role} role"
        )
    if api_key.revoked_at is not None:
        return api_key
    api_key.revoked_at = timezone.now()
    api_key.save(update_fields=["revoked_at"])
    audit_record(
        organization=api_key.organization,
        actor=actor,
        action="api_key.revoked",
        target=api_key,
        after=snapshot(api_key, ["revoked_at"]),
    )
    return api_key


def _a(role: str) -> str:
    return f"an {role}" if role[0] in "aeiou" else f"a {role}"


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise InvalidInput("A name is required", field="name")
    if len(name) > 100:
        raise InvalidInput("Names are at most 100 characters", field="name")
    return name
