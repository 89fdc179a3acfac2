"""Stripe's events, from the webhook to Sluice's invoices and billing accounts.

``stripe_event_receive`` stores a verified event once, under Stripe's id (a second delivery of
it does nothing), and queues ``stripe_event_apply`` for after the commit; the webhook answers at
once. Events arrive late, twice and out of order, so applying one does not trust the snapshot it
carries: with Stripe configured it reads the invoice or customer again and acts on what Stripe
says now, and an invoice only ever moves forward (``invoices.invoice_move``): an ``invoice.paid``
delivered before its ``invoice.finalized`` leaves the invoice paid, and the late finalization
changes nothing. Without an API key the snapshot is all there is, and it is used.

What each event does:

- ``invoice.finalized``, ``invoice.paid``, ``invoice.voided``, ``invoice.marked_uncollectible``:
  the Sluice invoice (by its Stripe id, else ``metadata.sluice_invoice_id``) moves forward to
  the state Stripe's invoice is in;
- ``invoice.payment_failed``: the same, and the failure's time is kept on the invoice;
- ``customer.updated``: the account's payment status is ``ok`` with a default payment method,
  ``none`` without;
- and after each, an account with an unpaid invoice whose payment failed is ``past_due``; one
  that was, and has none left, is ``ok`` again.

Other types are stored and marked ignored. An event about an invoice or customer Sluice does
not know raises an operators' alert. Stripe that cannot be reached leaves the event pending:
``stripe_events_retry_pending`` (a beat job) applies pending events again, which also covers an
event whose task was never queued.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from foundation.tasks import enqueue_on_commit
from tenants.audit import Actor, audit_record
from tenants.models import Organization
from tenants.scoping import tenant_scope

from .accounts import billing_account_of
from .alerts import alert_raise
from .invoices import invoice_move
from .models import (
    INVOICE_TRANSITIONS,
    AlertKind,
    BillingAccount,
    Invoice,
    InvoiceState,
    PaymentStatus,
    StripeEvent,
    StripeEventOutcome,
)
from .stripe_gateway import (
    PermanentStripeError,
    RetryableStripeError,
    StripeCustomer,
    StripeGateway,
    StripeInvoice,
    WebhookEvent,
    stripe_configured,
)

logger = logging.getLogger("sluice.billing.stripe_events")

INVOICE_EVENTS = frozenset(
    {
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_failed",
        "invoice.voided",
        "invoice.marked_uncollectible",
    }
)
CUSTOMER_EVENTS = frozenset({"customer.updated"})
HANDLED_EVENTS = INVOICE_EVENTS | CUSTOMER_EVENTS

# Stripe's invoice statuses as Sluice's states; a Stripe draft is not yet anything to Sluice.
STRIPE_STATUSES = {
    "open": InvoiceState.OPEN,
    "paid": InvoiceState.PAID,
    "uncollectible": InvoiceState.UNCOLLECTIBLE,
    "void": InvoiceState.VOID,
}
# Owed and not paid: a failed payment on one of these makes the account past due.
UNPAID_STATES = (InvoiceState.OPEN, InvoiceState.UNCOLLECTIBLE)
# A pending event is tried again once it is this old (its own task had its chance) ...
RETRY_AFTER = timedelta(minutes=2)
# ... and still pending this long after it arrived, it is an operator's to look at.
ALERT_AFTER = timedelta(hours=1)


# Receiving -----------------------------------------------------------------------------------


def stripe_event_receive(*, event: WebhookEvent) -> tuple[StripeEvent, bool]:
    """Store the event once; ``(row, True)`` the first time, when its application is queued,
    ``(row, False)`` for a repeat, which changes nothing. A type Sluice does not act on, or an
    event of the other mode (a test event on a live installation), is stored as ignored."""
    obj = event.invoice or event.customer
    ignored = _ignored_because(event)
    with transaction.atomic():
        row, created = StripeEvent.objects.get_or_create(
            event_id=event.id,
            defaults={
                "type": event.type,
                "object_id": event.object_id,
                "livemode": event.livemode,
                "occurred_at": datetime.fromtimestamp(event.created, tz=UTC),
                "summary": asdict(obj) if obj is not None else {},
                "outcome": StripeEventOutcome.IGNORED if ignored else StripeEventOutcome.PENDING,
                "detail": ignored,
                "processed_at": timezone.now() if ignored else None,
            },
        )
        if created and not ignored:
            enqueue_on_commit("billing.tasks.apply_stripe_event", event=event.id)
    return row, created


def _ignored_because(event: WebhookEvent) -> str:
    if event.type not in HANDLED_EVENTS:
        return f"Sluice does not act on {event.type}"
    if event.type in INVOICE_EVENTS and event.invoice is None:
        return f"{event.type} without an invoice in it"
    if event.type in CUSTOMER_EVENTS and event.customer is None:
        return f"{event.type} without a customer in it"
    if stripe_configured() and event.livemode != settings.STRIPE_LIVE_MODE:
        mode = "live" if event.livemode else "test"
        return f"A {mode}-mode event, and Sluice's Stripe key is not of that mode"
    return ""


# Applying ------------------------------------------------------------------------------------


def stripe_event_apply(*, event_id: str, gateway: StripeGateway | None = None) -> StripeEvent:
    """Apply the stored event, once: a processed event is left as it is. Stripe's answer is
    read before any row is locked (no lock waits on the network). Stripe that cannot be reached
    leaves the event pending (its detail says why), for ``stripe_events_retry_pending``."""
    event = StripeEvent.objects.get(event_id=event_id)
    if event.processed_at is not None:
        return event
    try:
        current = _current_object(event, gateway)
    except RetryableStripeError as error:
        event.detail = f"Stripe could not be asked (tried again later): {error}"
        StripeEvent.objects.filter(pk=event.pk, processed_at=None).update(detail=event.detail)
        return event
    except PermanentStripeError as error:
        current = error
    with transaction.atomic():
        event = StripeEvent.objects.select_for_update().get(pk=event.pk)
        if event.processed_at is not None:
            return event  # applied meanwhile by another worker
        if isinstance(current, PermanentStripeError):
            outcome, detail = StripeEventOutcome.FAILED, f"Stripe refused to say: {current}"
            _alert(event, detail)
        elif isinstance(current, StripeInvoice):
            outcome, detail = _apply_to_invoice(event, current)
        else:
            outcome, detail = _apply_to_customer(event, current)
        event.outcome, event.detail, event.processed_at = outcome, detail, timezone.now()
        event.save(update_fields=["outcome", "detail", "processed_at", "organization"])
    logger.info("stripe event %s (%s): %s, %s", event.event_id, event.type, outcome, detail)
    return event


def _current_object(
    event: StripeEvent, gateway: StripeGateway | None
) -> StripeInvoice | StripeCustomer:
    """The invoice or customer as Stripe has it now; without an API key, as the event had it."""
    is_invoice = event.type in INVOICE_EVENTS
    if gateway is None and stripe_configured():
        gateway = StripeGateway.from_settings()
    if gateway is None:
        return StripeInvoice(**event.summary) if is_invoice else StripeCustomer(**event.summary)
    if is_invoice:
        return gateway.retrieve_invoice(event.object_id)
    return gateway.retrieve_customer(event.object_id)


def _apply_to_invoice(event: StripeEvent, stripe_invoice: StripeInvoice) -> tuple[str, str]:
    found = _sluice_invoice(stripe_invoice)
    if found is None:
        detail = (
            f"No Sluice invoice is Stripe's {stripe_invoice.id}"
            f" (metadata.sluice_invoice_id: {stripe_invoice.sluice_invoice_id or 'none'})"
        )
        _alert(event, detail)
        return StripeEventOutcome.UNKNOWN_OBJECT, detail
    organization = event.organization = found.organization
    actor = _actor(event)
    notes = []
    with tenant_scope(organization):
        invoice = Invoice.objects.select_for_update().get(pk=found.pk)
        target = STRIPE_STATUSES.get(stripe_invoice.status)
        moved = _move_forward(invoice, target, actor, _stamps(event, stripe_invoice))
        if moved:
            notes.append(f"{invoice.public_id} {' → '.join([invoice.state, *moved])}")
        failed = event.type == "invoice.payment_failed" and _payment_failure_record(
            invoice, at=event.occurred_at, actor=actor
        )
        if failed:
            notes.append(
                f"{invoice.public_id}: payment failed at {event.occurred_at:%Y-%m-%d %H:%M}"
            )
        status = _payment_status_refresh(organization, actor=actor)
        if status:
            notes.append(f"payment status {status}")
    if notes:
        return StripeEventOutcome.APPLIED, "; ".join(notes)
    return (
        StripeEventOutcome.UNCHANGED,
        f"{invoice.public_id} is {invoice.state}; Stripe's {stripe_invoice.id} is"
        f" {stripe_invoice.status} (nothing moves back)",
    )


def _apply_to_customer(event: StripeEvent, customer: StripeCustomer) -> tuple[str, str]:
    account = (
        BillingAccount.unscoped_all_tenants.select_related("organization")
        .filter(stripe_customer_id=customer.id)
        .first()
    )
    if account is None:
        detail = f"No billing account is Stripe's customer {customer.id}"
        _alert(event, detail)
        return StripeEventOutcome.UNKNOWN_OBJECT, detail
    event.organization = account.organization
    with tenant_scope(account.organization):
        status = _payment_status_refresh(
            account.organization,
            actor=_actor(event),
            has_payment_method=customer.has_default_payment_method and not customer.deleted,
        )
    if status:
        return StripeEventOutcome.APPLIED, f"payment status {status}"
    return StripeEventOutcome.UNCHANGED, "payment status unchanged"


def _sluice_invoice(stripe_invoice: StripeInvoice) -> Invoice | None:
    """The Sluice invoice Stripe's is: by the Stripe id saved on it, else by the Sluice id in
    Stripe's metadata (an event may come before the push saved the id), never one that saved
    another Stripe id."""
    invoices = Invoice.unscoped_all_tenants.select_related("organization")
    found = invoices.filter(stripe_invoice_id=stripe_invoice.id).first()
    if found is None and stripe_invoice.sluice_invoice_id:
        found = invoices.filter(
            public_id=stripe_invoice.sluice_invoice_id,
            stripe_invoice_id__in=("", stripe_invoice.id),
        ).first()
    return found


def _move_forward(
    invoice: Invoice, target: str | None, actor: Actor, stamps: dict[str, datetime]
) -> list[str]:
    """Move the invoice to ``target`` through the states between (a draft Stripe says is paid
    is opened, then paid), each move audited; the states it went through. An invoice at the
    target, or further along, or where the target cannot be reached, is left as it is."""
    path = _forward_path(invoice.state, target) if target is not None else []
    for state in path:
        invoice_move(invoice=invoice, state=state, actor=actor, at=stamps.get(state))
    return path


def _forward_path(start: str, target: str) -> list[str]:
    """The fewest moves from ``start`` to ``target`` (``models.INVOICE_TRANSITIONS``); empty
    when already there or when it cannot be reached (the invoice is further along)."""
    came_from: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        if state == target:
            path = []
            while came_from[state] is not None:
                path.append(state)
                state = came_from[state]
            return path[::-1]
        for following in sorted(INVOICE_TRANSITIONS[state]):
            if following not in came_from:
                came_from[following] = state
                queue.append(following)
    return []


def _stamps(event: StripeEvent, stripe_invoice: StripeInvoice) -> dict[str, datetime]:
    """When the invoice reached each state, as Stripe recorded it (else the event's time)."""

    def instant(seconds: int | None) -> datetime:
        return datetime.fromtimestamp(seconds, tz=UTC) if seconds else event.occurred_at

    return {
        InvoiceState.OPEN: instant(stripe_invoice.finalized_at),
        InvoiceState.PAID: instant(stripe_invoice.paid_at),
    }


def _payment_failure_record(invoice: Invoice, *, at: datetime, actor: Actor) -> bool:
    """Keep the time of Stripe's last failed attempt to collect the (locked) invoice; an older
    failure delivered late changes nothing. Audited."""
    invoice.refresh_from_db()
    if invoice.payment_failed_at is not None and invoice.payment_failed_at >= at:
        return False
    before = invoice.payment_failed_at
    invoice.payment_failed_at = at
    invoice.save(update_fields=["payment_failed_at"])
    audit_record(
        organization=invoice.organization,
        actor=actor,
        action="invoice.payment_failed",
        target=invoice,
        before={"payment_failed_at": before.isoformat() if before else None},
        after={"payment_failed_at": at.isoformat()},
    )
    return True


def _payment_status_refresh(
    organization: Organization, *, actor: Actor, has_payment_method: bool | None = None
) -> str:
    """Set the account's payment status from its invoices (a failed payment on an unpaid one:
    ``past_due``) and, when a customer event said, from its payment method; the new status
    when it changed (audited), else an empty string."""
    billing_account_of(organization=organization)
    account = BillingAccount.objects.select_for_update().get(organization=organization)
    if failed_payments(organization=organization).exists():
        status = PaymentStatus.PAST_DUE
    elif has_payment_method is not None:
        status = PaymentStatus.OK if has_payment_method else PaymentStatus.NONE
    elif account.payment_status == PaymentStatus.PAST_DUE:
        status = PaymentStatus.OK  # its last failed invoice was paid (or voided)
    else:
        return ""
    if status == account.payment_status:
        return ""
    before = account.payment_status
    account.payment_status = status
    account.save(update_fields=["payment_status", "updated_at"])
    audit_record(
        organization=organization,
        actor=actor,
        action="billing_account.payment_status",
        target=organization,
        before={"payment_status": before},
        after={"payment_status": status},
    )
    return status


def _actor(event: StripeEvent) -> Actor:
    return Actor(system=f"stripe-event {event.event_id} ({event.type})")


def _alert(event: StripeEvent, detail: str) -> None:
    alert_raise(
        kind=AlertKind.STRIPE_WEBHOOK,
        subject=(event.object_id or event.event_id)[:64],  # one alert per unknown object
        message=f"{event.type} {event.event_id}: {detail}",
        organization=event.organization,
    )


# The beat job --------------------------------------------------------------------------------


def stripe_events_retry_pending(*, limit: int = 100) -> int:
    """Apply again the events still pending a while after they arrived (Stripe could not be
    reached, or the task was lost); alert about those pending too long. Safe to run twice at
    once: applying an event locks it and checks it is still pending. The number applied."""
    now = timezone.now()
    pending = StripeEvent.objects.filter(
        processed_at=None, received_at__lte=now - RETRY_AFTER
    ).order_by("received_at")
    applied = 0
    for event in pending[:limit]:
        event = stripe_event_apply(event_id=event.event_id)
        if event.processed_at is not None:
            applied += 1
        elif event.received_at <= now - ALERT_AFTER:
            _alert(event, f"still pending {ALERT_AFTER} after it arrived: {event.detail}")
    return applied


# Reading -------------------------------------------------------------------------------------


def failed_payments(*, organization: Organization) -> QuerySet[Invoice]:
    """The organization's unpaid invoices whose payment Stripe failed to collect, oldest first:
    what makes its account past due, and what the Billing tab warns about."""
    return Invoice.objects.filter(
        organization=organization, state__in=UNPAID_STATES, payment_failed_at__isnull=False
    ).order_by("period_start")
