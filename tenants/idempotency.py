"""``Idempotency-Key`` on POST: the first response is kept per organization and key for 24 hours
and replayed to retries; the same key with another body (or from another caller) is refused.
A response that shows a secret (``foundation.api.secrets.ShownOnce``) is kept without it: its
replay is the same object with the secret fields null, ``Secret-Withheld`` naming them."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from foundation.api import secrets
from foundation.api.validation import IDEMPOTENCY_KEY_PATTERN
from foundation.errors import IdempotencyInProgress, IdempotencyKeyReused, InvalidInput

from .models import IdempotencyRecord, Organization

HEADER = "Idempotency-Key"
RETENTION = timedelta(hours=24)
MAX_KEY_LENGTH = 255
_REPLAYED_HEADERS = ("Content-Type", "Location", "Cache-Control")


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: bytes
    headers: dict[str, str]


def fingerprint(*, method: str, path: str, data) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def begin(
    *, organization: Organization, key: str, principal: str, request_fingerprint: str
) -> tuple[IdempotencyRecord | None, StoredResponse | None]:
    """Claim ``key`` for this request. Returns (record to complete, None) for a first request,
    or (None, stored response) for a retry of a finished one."""
    if not re.fullmatch(IDEMPOTENCY_KEY_PATTERN, key, flags=re.ASCII):
        raise InvalidInput(
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} visible ASCII characters (no spaces)",
            field=HEADER,
        )
    cutoff = timezone.now() - RETENTION
    IdempotencyRecord.objects.filter(
        organization=organization, key=key, created_at__lt=cutoff
    ).delete()
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(
                organization=organization,
                key=key,
                principal=principal,
                fingerprint=request_fingerprint,
            )
        return record, None
    except IntegrityError:
        pass
    existing = IdempotencyRecord.objects.filter(organization=organization, key=key).first()
    if existing is None:  # expired and purged between our two statements: start over
        return begin(
            organization=organization,
            key=key,
            principal=principal,
            request_fingerprint=request_fingerprint,
        )
    if existing.principal != principal or existing.fingerprint != request_fingerprint:
        raise IdempotencyKeyReused(
            f"{HEADER} {key!r} was first used with a different request; use a new key"
        )
    if existing.status_code is None:
        raise IdempotencyInProgress(f"The first request with {HEADER} {key!r} is still running")
    return None, StoredResponse(
        existing.status_code, bytes(existing.response_body or b""), existing.response_headers
    )


def complete(
    *,
    record: IdempotencyRecord,
    status_code: int,
    body: bytes,
    headers,
    secret_fields: tuple[str, ...] = (),
) -> None:
    """Keep the response for replay, without its ``secret_fields``. A server error is not kept:
    the client should retry."""
    if status_code >= 500:
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
        return
    kept = {name: headers[name] for name in _REPLAYED_HEADERS if name in headers}
    if secret_fields:
        body = secrets.withheld(body, secret_fields)
        kept["Cache-Control"] = secrets.NO_STORE
        kept[secrets.WITHHELD_HEADER] = ", ".join(secret_fields)
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        status_code=status_code, response_body=body, response_headers=kept
    )


def abandon(*, record: IdempotencyRecord) -> None:
    IdempotencyRecord.objects.filter(pk=record.pk).delete()


def purge_expired() -> int:
    """Fleet-wide housekeeping (beat): drop records past their retention, for every tenant."""
    cutoff = timezone.now() - RETENTION
    deleted, _ = IdempotencyRecord.unscoped_all_tenants.filter(created_at__lt=cutoff).delete()
    return deleted
