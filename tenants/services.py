"""Writes of the tenancy layer. Keyword-only, atomic, and each one leaves an audit event."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from foundation import ratelimit
from foundation.errors import Conflict, InvalidInput, LastOwner, NotFound, NotPermitted
from foundation.tasks import enqueue_on_commit

from . import selectors, tokens
from .audit import Actor, audit_record, snapshot
from .models import ApiKey, Invitation, Membership, Organization, User
from .roles import Role, can_grant
from .scoping import tenant_scope

MAX_API_KEY_LIFETIME_DAYS = 365
SIGNUP_LINK_LIFETIME = timedelta(days=1)
_SIGNUP_SALT = "tenants.signup"


# Accounts ------------------------------------------------------------------------------------


def signup_request(
    *, email: str, first_name: str = "", last_name: str = "", next_url: str = "", site_url: str
) -> str:
    """Start a sign-up: a worker mails the address a link to finish it or, when the address
    already has an account, a note saying so. The caller's answer is the same either way, so
    sign-up does not tell who has an account. Returns the normalised address."""
    email = User.objects.normalize_email(email).strip().lower()
    details = {
        "email": email,
        "first_name": first_name.strip(),
        "last_name": last_name.strip(),
        "next_url": next_url,
        "site_url": site_url,
    }
    enqueue_on_commit("tenants.tasks.send_signup_email", **details)
    return email


def signup_send_email(
    *, email: str, first_name: str, last_name: str, next_url: str, site_url: str
) -> None:
    """Mail the sign-up link, or tell the owner of a taken address that someone tried. The link
    carries the details, signed; nothing is stored until the address's owner follows it."""
    site_url = site_url.rstrip("/")
    if User.objects.filter(email__iexact=email).exists():
        subject = "Someone tried to sign up to Sluice with your address"
        template = "tenants/email/signup_taken.txt"
        context = {
            "login_url": site_url + reverse("login"),
            "reset_url": site_url + reverse("password_reset"),
        }
    else:
        token = signing.dumps(
            {"email": email, "first_name": first_name, "last_name": last_name, "next": next_url},
            salt=_SIGNUP_SALT,
            compress=True,
        )
        subject = "Finish signing up to Sluice"
        template = "tenants/email/signup.txt"
        context = {
            "confirm_url": site_url + reverse("tenants:signup-confirm", args=[token]),
            "hours": int(SIGNUP_LINK_LIFETIME.total_seconds() // 3600),
        }
    send_mail(
        subject=subject,
        message=render_to_string(template, {"email": email, **context}),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[email],
    )


def signup_details(*, token: str) -> dict:
    """What a mailed sign-up link says: e-mail, names and where to go next."""
    try:
        return signing.loads(token, salt=_SIGNUP_SALT, max_age=SIGNUP_LINK_LIFETIME.total_seconds())
    except signing.SignatureExpired:
        raise InvalidInput("This sign-up link has expired: sign up again") from None
    except signing.BadSignature:
        raise NotFound("This is not a sign-up link of ours: sign up again") from None


def user_signup(*, email: str, password: str, first_name: str = "", last_name: str = "") -> User:
    """Create the account of a confirmed address (see ``signup_request``)."""
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


def login_lockout(*, email: str, client_address: str | None) -> int:
    """Seconds until this account may sign in again from this address; 0 when it may now."""
    return ratelimit.locked_for([key for key, _ in _login_failure_limits(email, client_address)])


def login_failure_record(*, email: str, client_address: str | None) -> None:
    """Count a failed sign-in against the account and the address; the one that reaches its
    limit within the window is locked for the window."""
    window = settings.SLUICE_LOGIN_LOCKOUT_SECONDS
    limits = _login_failure_limits(email, client_address)
    # A limit of N - 1 is exceeded by the Nth failure.
    decisions = ratelimit.hit_all([(key, limit - 1) for key, limit in limits], window=window)
    for (key, _), decision in zip(limits, decisions, strict=True):
        if not decision.allowed:
            ratelimit.lock(key, seconds=window)


def _login_failure_limits(email: str, client_address: str | None) -> list[tuple[str, int]]:
    # The e-mail address is hashed: the rate-limit store need not hold who tried to sign in.
    account = tokens.digest(User.objects.normalize_email(email or "").strip().lower())[:32]
    limits = [(f"login:account:{account}", settings.SLUICE_LOGIN_FAILURES_PER_ACCOUNT)]
    if client_address:
        per_address = settings.SLUICE_LOGIN_FAILURES_PER_ADDRESS
        limits.append((f"login:address:{client_address}", per_address))
    return limits


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
    # Their keys acted for them: they end here, and do not come back if the person is invited
    # again (authentication refuses them meanwhile too, the creator being no member).
    keys = ApiKey.objects.select_for_update().filter(
        organization=membership.organization, created_by=membership.user, revoked_at__isnull=True
    )
    for api_key in keys:
        _revoke(api_key, actor=actor, reason="creator_left")


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
    """Create an API key. Returns the key record and the whole key, which is shown once.

    A key acts for a person, and at most with that person's current role: the member creating
    it, or, when a key mints a key, the person behind the minting key (``actor_role`` is then
    the minting key's own bounded role, so the new key cannot exceed it).
    """
    creator_id = actor.user.pk if actor.user is not None else None
    if creator_id is None and actor.api_key is not None:
        creator_id = actor.api_key.created_by_id
    if creator_id is None:
        raise NotPermitted("An API key is created by a member or by a member's API key")
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
        created_by_id=creator_id,
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
    if api_key.revoked_at is None:
        _revoke(api_key, actor=actor)
    return api_key


def _revoke(api_key: ApiKey, *, actor: Actor, reason: str | None = None) -> None:
    """Revoke a key locked by the caller, and audit it (with why, when it is not the actor's
    own decision)."""
    api_key.revoked_at = timezone.now()
    api_key.save(update_fields=["revoked_at"])
    after = snapshot(api_key, ["revoked_at"])
    if reason is not None:
        after["reason"] = reason
    audit_record(
        organization=api_key.organization,
        actor=actor,
        action="api_key.revoked",
        target=api_key,
        after=after,
    )


def _a(role: str) -> str:
    return f"an {role}" if role[0] in "aeiou" else f"a {role}"


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise InvalidInput("A name is required", field="name")
    if len(name) > 100:
        raise InvalidInput("Names are at most 100 characters", field="name")
    return name
