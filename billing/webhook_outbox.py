"""The outbox of webhook posts to customers' endpoints: a fired budget alert gets its
``WebhookDelivery`` row in the transaction that fires it (``budgets``), and workers post it
from there (``deliveries_post_due``, run by the task ``billing.tasks.deliver_webhooks`` on
commit and by beat for the retries).

Claiming is the Stripe outbox's (``billing.outbox``): ``SELECT … FOR UPDATE SKIP LOCKED`` on a
pending row that is due and whose lease (if any) ran out, then a fresh ``claim_token`` and
``claimed_until`` committed before the post. The outcome is written only by the holder of the
token (a worker whose lease ran out and was overtaken writes nothing), together with the
attempt's line in the delivery log (``WebhookAttempt``: when, the status code or the error,
how long it took).

Outcomes: a 2xx answer delivers it; anything else (another status, no answer, a URL that now
resolves somewhere refused, a secret no key opens) is tried again after ``backoff`` (30 s
doubling up to an hour), until ``SLUICE_WEBHOOK_MAX_ATTEMPTS`` attempts, when it is given up
(``failed``). An organization that removed its endpoint has its pending deliveries given up.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from foundation.secretbox import Unreadable

from .models import DeliveryState, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from .webhook_endpoints import SIGNATURE_HEADER, endpoint_secret, signature
from .webhook_http import PostFailed, UrlRefused, checked_target, post

log = logging.getLogger("sluice.billing.webhooks")

BACKOFF_FIRST = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)
POSTS_PER_RUN = 50
USER_AGENT = "Sluice-Webhooks/1"


@dataclass(frozen=True)
class Claim:
    delivery_pk: int
    token: str


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str
    duration_ms: int
    url: str

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failure in a row: 30 s, 1 min, 2 min, … up to 1 h."""
    return min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** min(attempts - 1, 20))


def _due(now: datetime):
    return WebhookDelivery.unscoped_all_tenants.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lte=now),
        state=DeliveryState.PENDING,
        next_attempt_at__lte=now,
    )


@transaction.atomic
def delivery_claim(*, now: datetime | None = None) -> Claim | None:
    """Claim the next due delivery (committed on return), or None; rows another worker is
    claiming at this moment are skipped, not waited for."""
    now = now or timezone.now()
    pk = (
        _due(now)
        .select_for_update(skip_locked=True)
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)
        .first()
    )
    if pk is None:
        return None
    claim = Claim(delivery_pk=pk, token=uuid.uuid4().hex)
    lease = timedelta(seconds=settings.SLUICE_WEBHOOK_LEASE_SECONDS)
    WebhookDelivery.unscoped_all_tenants.filter(pk=pk).update(
        claim_token=claim.token, claimed_until=now + lease
    )
    return claim


def deliveries_post_due(*, now: datetime | None = None, limit: int = POSTS_PER_RUN) -> int:
    """Post due deliveries, one claim at a time, until none is due or ``limit`` were tried;
    how many were delivered."""
    delivered = 0
    for _ in range(limit):
        claim = delivery_claim(now=now)
        if claim is None:
            break
        delivered += delivery_post(claim, now=now) == DeliveryState.DELIVERED
    return delivered


def delivery_post(claim: Claim, *, now: datetime | None = None) -> str:
    """Post the claimed delivery and record the attempt; its state after, as this worker
    knows it."""
    delivery = WebhookDelivery.unscoped_all_tenants.select_related("alert").get(
        pk=claim.delivery_pk
    )
    endpoint = WebhookEndpoint.unscoped_all_tenants.filter(
        organization_id=delivery.organization_id
    ).first()
    if endpoint is None:
        outcome = Outcome(None, "The webhook endpoint was removed", 0, "")
        return _record(claim, delivery, outcome, now=now, give_up=True)
    return _record(claim, delivery, _attempt(delivery, endpoint), now=now)


def _attempt(delivery: WebhookDelivery, endpoint: WebhookEndpoint) -> Outcome:
    try:
        target = checked_target(endpoint.url)
        body = delivery.body.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Sluice-Event-Id": delivery.alert.public_id,
            "Sluice-Event-Type": delivery.event_type,
            SIGNATURE_HEADER: signature(
                endpoint_secret(endpoint), timestamp=int(time.time()), body=body
            ),
        }
        answer = post(target, body=body, headers=headers)
    except UrlRefused as refused:
        return Outcome(None, refused.detail, 0, endpoint.url)
    except Unreadable:
        return Outcome(None, "The signing secret cannot be opened: rotate it", 0, endpoint.url)
    except PostFailed as failed:
        return Outcome(None, str(failed), failed.duration_ms, endpoint.url)
    error = "" if 200 <= answer.status < 300 else f"The endpoint answered {answer.status}"
    return Outcome(answer.status, error, answer.duration_ms, endpoint.url)


@transaction.atomic
def _record(
    claim: Claim,
    delivery: WebhookDelivery,
    outcome: Outcome,
    *,
    now: datetime | None,
    give_up: bool = False,
) -> str:
    now = now or timezone.now()
    attempts = delivery.attempts + 1
    if outcome.delivered:
        changes = {"state": DeliveryState.DELIVERED, "delivered_at": now, "last_error": ""}
    elif give_up or attempts >= settings.SLUICE_WEBHOOK_MAX_ATTEMPTS:
        changes = {"state": DeliveryState.FAILED, "last_error": outcome.error}
    else:
        changes = {"next_attempt_at": now + backoff(attempts), "last_error": outcome.error}
    held = WebhookDelivery.unscoped_all_tenants.filter(
        pk=claim.delivery_pk, claim_token=claim.token, state=DeliveryState.PENDING
    ).update(attempts=attempts, claim_token="", claimed_until=None, **changes)
    if not held:
        log.warning("delivery %s: the claim was lost; its outcome is not written", delivery)
        return DeliveryState.PENDING
    WebhookAttempt.unscoped_all_tenants.create(
        organization_id=delivery.organization_id,
        delivery_id=delivery.pk,
        attempted_at=now,
        url=outcome.url,
        status_code=outcome.status_code,
        error=outcome.error[:2000],
        duration_ms=outcome.duration_ms,
    )
    state = changes.get("state", DeliveryState.PENDING)
    if not outcome.delivered:
        log.warning(
            "webhook %s attempt %s: %s (%s)", delivery.public_id, attempts, outcome.error, state
        )
    return state


def deliveries_of(*, organization, limit: int = 50) -> list[WebhookDelivery]:
    """The organization's latest deliveries, each with its attempts (the delivery log)."""
    return list(
        WebhookDelivery.objects.filter(organization=organization)
        .select_related("alert")
        .prefetch_related("attempt_log")
        .order_by("-created_at", "-id")[:limit]
    )
