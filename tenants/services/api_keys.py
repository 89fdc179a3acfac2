"""API keys: created for a role the creator may grant (shown once, stored as a digest),
revoked by whoever may grant the key's role, or with their creator's membership."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from foundation.errors import InvalidInput, NotPermitted

from .. import tokens
from ..audit import Actor, audit_record, snapshot
from ..models import ApiKey, Organization
from ..roles import Role, can_grant
from .names import a_role, clean_name

MAX_API_KEY_LIFETIME_DAYS = 365


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
            f"{a_role(actor_role).capitalize()} cannot create a key with the {role} role"
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
        name=clean_name(name),
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
            f"{a_role(actor_role).capitalize()} cannot revoke a key with the {api_key.role} role"
        )
    if api_key.revoked_at is None:
        revoke_key(api_key, actor=actor)
    return api_key


def revoke_key(api_key: ApiKey, *, actor: Actor, reason: str | None = None) -> None:
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
