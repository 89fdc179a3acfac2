"""An organization's webhook endpoint for budget alerts: its URL (checked against the SSRF
rules of ``webhook_http`` when saved) and its signing secret, made by Sluice, sealed at rest
(``foundation.secretbox``) and shown once, when made or rotated. Set and removed by the owner
and billing roles, audited (the secret never is).

Each post is signed: ``Sluice-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<body>" under the secret>``, so the customer can check who sent it and when (the README
shows how)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from django.db import transaction

from foundation import secretbox
from tenants.audit import Actor, audit_record
from tenants.models import Organization

from .models import WebhookEndpoint
from .webhook_http import checked_target

SIGNATURE_HEADER = "Sluice-Signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix of the secrets made, not one


@dataclass(frozen=True)
class SavedEndpoint:
    endpoint: WebhookEndpoint
    created: bool
    secret: str | None  # the new secret, when this save made one: shown once


def endpoint_of(*, organization: Organization) -> WebhookEndpoint | None:
    return WebhookEndpoint.objects.filter(organization=organization).first()


@transaction.atomic
def endpoint_set(
    *, organization: Organization, actor: Actor, url: str, rotate_secret: bool = False
) -> SavedEndpoint:
    """Save the endpoint's URL (refused: ``webhook_url_refused``); a new endpoint, or
    ``rotate_secret``, gets a new secret, returned once."""
    url = url.strip() if isinstance(url, str) else url
    checked_target(url)
    endpoint = WebhookEndpoint.objects.select_for_update().filter(organization=organization).first()
    created = endpoint is None
    before = None if created else {"url": endpoint.url}
    endpoint = endpoint or WebhookEndpoint(organization=organization)
    endpoint.url = url
    secret = None
    if created or rotate_secret:
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        endpoint.secret_sealed = secretbox.seal(secret)
    endpoint.save()
    if created or before != {"url": url} or secret:
        audit_record(
            organization=organization,
            actor=actor,
            action="webhook_endpoint.created" if created else "webhook_endpoint.updated",
            target=endpoint,
            before=before,
            after={"url": url, **({"secret_rotated": True} if secret and not created else {})},
        )
    return SavedEndpoint(endpoint=endpoint, created=created, secret=secret)


@transaction.atomic
def endpoint_delete(*, organization: Organization, actor: Actor) -> bool:
    """Remove the endpoint (its deliveries stay in the log; pending ones are given up)."""
    endpoint = endpoint_of(organization=organization)
    if endpoint is None:
        return False
    audit_record(
        organization=organization,
        actor=actor,
        action="webhook_endpoint.deleted",
        target=endpoint,
        before={"url": endpoint.url},
    )
    endpoint.delete()
    return True


def signature(secret: str, *, timestamp: int, body: bytes) -> str:
    """The ``Sluice-Signature`` header's value for ``body`` posted at ``timestamp``."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def endpoint_secret(endpoint: WebhookEndpoint) -> str:
    return secretbox.unseal(endpoint.secret_sealed)
