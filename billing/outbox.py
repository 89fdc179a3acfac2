"""The outbox of pushes to Stripe: a closed invoice gets its row in the transaction that closes
it (``outbox_add``), and workers push it from there (``outbox_push_due``, run by the task
``billing.tasks.push_to_stripe`` on commit and by beat).

A worker claims one due row at a time: ``SELECT … FOR UPDATE SKIP LOCKED`` on pending rows
whose ``next_attempt_at`` has come and whose lease (if any) ran out, then a fresh
``claim_token`` and ``claimed_until`` committed before any call to Stripe. Two workers never
hold one row; a worker that died loses its lease and the row is claimable again. The push
itself, and its fencing, are ``billing.stripe_push``'s.

Outcomes, each written only while the claim holds:

- done: ``state=done``, ``done_at``, one audit event on the invoice. Sluice's invoice stays
  ``open``, as the month close left it: Stripe's events move it further.
- Stripe did not answer, or answered 409, 429 or 5xx: ``attempts`` + 1 and the row comes back
  at ``next_attempt_at``, backing off exponentially (``BACKOFF_FIRST`` doubling up to
  ``BACKOFF_CAP``), never before Stripe's Retry-After.
- Stripe refused (another 4xx), or its total is not Sluice's: ``state=failed`` and an alert to
  the operators (``AlertKind.STRIPE_REFUSED`` about the invoice), until one retries it from the
  admin (``outbox_retry``).
- Stripe not configured (no ``STRIPE_API_KEY``, as ``make run`` starts): nothing is claimed and
  nothing changes; the rows wait, pending, for a key.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from foundation.tasks import enqueue_on_commit
from tenants.audit import Actor, audit_record
from tenants.scoping import tenant_scope

from .alerts import alert_raise, alert_resolve
from .models import AlertKind, Invoice, OutboxState, StripeOutbox
from .stripe_gateway import (
    PermanentStripeError,
    RetryableStripeError,
    StripeCallFailed,
    StripeGateway,
    StripeInvoice,
    StripeNotConfigured,
)
from .stripe_push import Claim, ClaimLost, TotalsDiffer, push

log = logging.getLogger("sluice.billing.outbox")

PUSH_TASK = "billing.tasks.push_to_stripe"
SYSTEM = Actor(system="stripe-outbox")
BACKOFF_FIRST = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)
# How many rows one run pushes at most, and for how long it claims new ones, before it ends
# (beat starts the next): well inside the tasks' time limit.
PUSHES_PER_RUN = 50
CLAIMING_FOR = timedelta(seconds=120)


def outbox_add(*, invoice: Invoice) -> StripeOutbox:
    """Queue the push of ``invoice`` (closed: open, in Sluice's states); call it inside the
    transaction that closes the invoice. Once per invoice. A push starts once it commits."""
    row = StripeOutbox.objects.create(
        organization_id=invoice.organization_id, invoice=invoice, next_attempt_at=timezone.now()
    )
    enqueue_on_commit(PUSH_TASK)
    return row


# Claiming -------------------------------------------------------------------------------------


def _due(now: datetime):
    """Pending rows whose time has come and that no live lease holds."""
    return StripeOutbox.unscoped_all_tenants.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lte=now),
        state=OutboxState.PENDING,
        next_attempt_at__lte=now,
    )


@transaction.atomic
def outbox_claim() -> Claim | None:
    """Claim the next due row (committed on return), or None when there is none. Rows another
    worker is claiming at this moment are skipped, not waited for."""
    now = timezone.now()
    row = (
        _due(now)
        .select_for_update(skip_locked=True)
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)
        .first()
    )
    if row is None:
        return None
    lease = timedelta(seconds=settings.SLUICE_STRIPE_OUTBOX_LEASE_SECONDS)
    claim = Claim(outbox_pk=row, token=uuid.uuid4().hex, lease=lease)
    StripeOutbox.unscoped_all_tenants.filter(pk=row).update(
        claim_token=claim.token, claimed_until=now + lease
    )
    return claim


# Pushing --------------------------------------------------------------------------------------


def outbox_push_due(*, limit: int = PUSHES_PER_RUN) -> int:
    """Push due rows, one claim at a time, until none is due, ``limit`` were tried or
    ``CLAIMING_FOR`` has passed; how many were pushed to the end. Without a Stripe key nothing
    is claimed: 0."""
    try:
        gateway = StripeGateway.from_settings()
    except StripeNotConfigured:
        # Every beat, in a `make run` without a key: not worth a line each time. The admin
        # says it on every pending push.
        log.debug("Stripe is not configured (no STRIPE_API_KEY): no invoice is pushed")
        return 0
    pushed = 0
    stop_claiming_at = timezone.now() + CLAIMING_FOR
    for _ in range(limit):
        if timezone.now() >= stop_claiming_at:
            break
        claim = outbox_claim()
        if claim is None:
            break
        pushed += outbox_push(claim, gateway=gateway) == OutboxState.DONE
    return pushed


def outbox_push(claim: Claim, *, gateway: StripeGateway) -> str:
    """Push the claimed row and record how it went; the row's state after (as this worker
    knows it: a worker that lost its claim says pending, and wrote nothing)."""
    try:
        finalized = push(claim, gateway)
        outcome = _done(claim, finalized)
    except ClaimLost as lost:
        log.warning("%s: another worker goes on with it", lost)
        return OutboxState.PENDING
    except RetryableStripeError as error:
        outcome = _retry_later(claim, _described(error), retry_after=error.retry_after)
    except (PermanentStripeError, TotalsDiffer) as error:
        outcome = _fail(claim, _described(error))
    except Exception as error:  # a bug or a database failure: logged, and tried again later
        log.exception("outbox row %s: the push failed unexpectedly", claim.outbox_pk)
        outcome = _retry_later(claim, f"{type(error).__name__}: {error}", retry_after=None)
    return outcome


def _described(error: Exception) -> str:
    if isinstance(error, StripeCallFailed):
        status = f"{error.status} " if error.status else ""
        request = f" (request {error.request_id})" if error.request_id else ""
        return f"Stripe {status}{error.code or type(error).__name__}: {error}{request}"
    return str(error)


def _outcome(write):
    """Run ``write`` (which writes the outcome) while the claim holds, else nothing."""

    def run(claim: Claim, *args, **kwargs) -> str:
        try:
            with claim.hold():
                row = StripeOutbox.unscoped_all_tenants.select_related(
                    "invoice", "organization"
                ).get(pk=claim.outbox_pk)
                with tenant_scope(row.organization):
                    return write(row, *args, **kwargs)
        except ClaimLost as lost:
            log.warning("%s: its outcome is left to the worker that holds it", lost)
            return OutboxState.PENDING

    return run


def _release(row: StripeOutbox, **changes) -> None:
    StripeOutbox.unscoped_all_tenants.filter(pk=row.pk).update(
        claim_token="", claimed_until=None, **changes
    )


@_outcome
def _done(row: StripeOutbox, finalized: StripeInvoice) -> str:
    _release(row, state=OutboxState.DONE, done_at=timezone.now(), last_error="")
    audit_record(
        organization=row.organization,
        actor=SYSTEM,
        action="invoice.pushed_to_stripe",
        target=row.invoice,
        after={
            "stripe_invoice_id": finalized.id,
            "stripe_status": finalized.status,
            "stripe_total_cents": finalized.total,
        },
    )
    return OutboxState.DONE


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failure in a row: 30 s, 1 min, 2 min, … up to 1 h."""
    return min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** min(attempts - 1, 20))


@_outcome
def _retry_later(row: StripeOutbox, error: str, *, retry_after: float | None) -> str:
    attempts = row.attempts + 1
    wait = max(backoff(attempts), timedelta(seconds=retry_after or 0))
    _release(row, attempts=attempts, next_attempt_at=timezone.now() + wait, last_error=error[:2000])
    log.warning("push of %s failed (%s); next attempt in %s", row.invoice.public_id, error, wait)
    return OutboxState.PENDING


@_outcome
def _fail(row: StripeOutbox, error: str) -> str:
    _release(row, state=OutboxState.FAILED, last_error=error[:2000])
    alert_raise(
        kind=AlertKind.STRIPE_REFUSED,
        subject=row.invoice.public_id,
        message=f"The push of invoice {row.invoice.public_id} to Stripe stopped: {error}",
        organization=row.organization,
    )
    return OutboxState.FAILED


# Operators ------------------------------------------------------------------------------------


@transaction.atomic
def outbox_retry(*, outbox: StripeOutbox, actor: Actor) -> bool:
    """Push the row again now: a failed one becomes pending (its alert resolved), a pending one
    waiting out its backoff is due at once. A done row, or one a worker holds, is left as it
    is (False)."""
    row = (
        StripeOutbox.unscoped_all_tenants.select_for_update()
        .select_related("invoice", "organization")
        .get(pk=outbox.pk)
    )
    now = timezone.now()
    if row.state == OutboxState.DONE or (row.claimed_until and row.claimed_until > now):
        return False
    before = row.state
    StripeOutbox.unscoped_all_tenants.filter(pk=row.pk).update(
        state=OutboxState.PENDING, next_attempt_at=now
    )
    if before == OutboxState.FAILED:
        alert_resolve(kind=AlertKind.STRIPE_REFUSED, subject=row.invoice.public_id)
    with tenant_scope(row.organization):
        audit_record(
            organization=row.organization,
            actor=actor,
            action="invoice.stripe_push_retried",
            target=row.invoice,
            before={"outbox_state": before},
            after={"outbox_state": OutboxState.PENDING},
        )
    enqueue_on_commit(PUSH_TASK)
    return True
