"""Celery tasks of the billing app: thin, loading what they act on and calling metering or
the Stripe outbox.

Metering works per cell, fleet-wide: a cell is not a tenant's object, so its task takes the
cell's slug (its stable public name) and reads across tenants with the unscoped managers. A
billing task that acts on one organization's objects takes public ids and runs inside that
tenant's scope (tenants.tasks.TenantTask), as the tenancy layer's tasks do.
"""

from celery import shared_task

from clusters.models import Cell

from . import metering, outbox


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


@shared_task(name="billing.tasks.push_to_stripe")
def push_to_stripe(*, limit: int = outbox.PUSHES_PER_RUN) -> int:
    """Push due invoices to Stripe (fleet-wide: the outbox claims rows across tenants and enters
    each invoice's tenant itself); queued when an invoice closes, and by beat for retries. Safe
    to run many at once: each row is claimed by one run."""
    return outbox.outbox_push_due(limit=limit)
