"""The outbox of pushes to Stripe: a closed invoice gets its row in the transaction that closes
it (``outbox_add``), and workers push it from there."""

from __future__ import annotations

from django.utils import timezone

from .models import Invoice, StripeOutbox


def outbox_add(*, invoice: Invoice) -> StripeOutbox:
    """Queue the push of ``invoice`` (closed: open, in Sluice's states); call it inside the
    transaction that closes the invoice. Once per invoice."""
    return StripeOutbox.objects.create(
        organization_id=invoice.organization_id, invoice=invoice, next_attempt_at=timezone.now()
    )
