"""Who is acting, and the audit trail every mutation writes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db import models

from foundation.requestid import current_request_id

from .models import ApiKey, AuditEvent, Organization, User


@dataclass(frozen=True)
class Actor:
    """A person (``user``), an API key, or a named part of the system (``system``)."""

    user: User | None = None
    api_key: ApiKey | None = None
    system: str = ""

    @property
    def label(self) -> str:
        if self.api_key is not None:
            return f"api-key:{self.api_key.public_id} ({self.api_key.name})"
        if self.user is not None:
            return self.user.email
        return f"system:{self.system or 'sluice'}"

    @classmethod
    def from_request(cls, request) -> Actor:
        if isinstance(request.auth, ApiKey):
            return cls(api_key=request.auth)
        return cls(user=request.user)


def snapshot(instance: models.Model, fields: list[str]) -> dict[str, Any]:
    return {name: _plain(getattr(instance, name)) for name in fields}


def audit_record(
    *,
    organization: Organization,
    actor: Actor,
    action: str,
    target: models.Model,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        organization=organization,
        actor_user=actor.user,
        actor_api_key=actor.api_key,
        actor_label=actor.label,
        action=action,
        target_type=_snake(type(target).__name__),
        target_id=getattr(target, "public_id", None) or str(target.pk),
        target_name=_name_of(target)[:200],
        request_id=current_request_id(),
        before=before,
        after=after,
    )


def _name_of(target: models.Model) -> str:
    """What a person calls the target: its name, its e-mail (an invitation), its member's
    e-mail (a membership), or its own description."""
    for path in ("name", "email", "user.email"):
        value = target
        for part in path.split("."):
            value = getattr(value, part, None)
        if isinstance(value, str) and value:
            return value
    return str(target)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _plain(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, models.Model):
        return getattr(value, "public_id", None) or str(value.pk)
    return value
