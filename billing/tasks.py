"""Celery tasks of the billing app: thin, loading what they act on and calling metering or
applying Stripe's events.

Metering works per cell, fleet-wide: a cell is not a tenant's object, so its task takes the
cell's slug (its stable public name) and reads across tenants with the unscoped managers. A
billing task that acts on one organization's objects takes public ids and runs inside that
tenant's scope (tenants.tasks.TenantTask), as the tenancy layer's tasks do. A Stripe event is
named by Stripe's id; which organization it concerns is found in applying it.
"""

from celery import shared_task

from clusters.models import Cell

from . import metering, stripe_events


@shared_task(name="billing.tasks.collect_usage")
def collect_usage() -> int:
    """Start a collection of every cell (one task each, so a slow Prometheus holds up only its
    own cell)."""
    slugs = list(Cell.objects.values_list("slug", flat=True))
    for slug in slugs:
        collect_cell_usage.delay(cell=slug)
    return len(slugs)


@shared_task(name="billing.tasks.collect_cell_usage")
def collect_cell_usage(*, cell: str) -> int:
    """Recompute the cell's open hours into the ledger; a Prometheus that cannot answer leaves
    the watermark where it was, and the next beat tries again."""
    return metering.collect_cell(Cell.objects.get(slug=cell)).written


@shared_task(name="billing.tasks.apply_stripe_event")
def apply_stripe_event(*, event: str) -> str:
    """Apply one stored Stripe event (``event`` is Stripe's ``evt_…`` id); its outcome."""
    return stripe_events.stripe_event_apply(event_id=event).outcome


@shared_task(name="billing.tasks.retry_pending_stripe_events")
def retry_pending_stripe_events() -> int:
    """Apply again the Stripe events left pending (Stripe unreachable, a task lost)."""
    return stripe_events.stripe_events_retry_pending()
