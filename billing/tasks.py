"""Celery tasks of the billing app: thin, loading what they act on and calling a service.

Metering works per cell, fleet-wide: a cell is not a tenant's object, so its task takes the
cell's slug (its stable public name) and reads across tenants with the unscoped managers. A
billing task that acts on one organization's objects takes public ids and runs inside that
tenant's scope (tenants.tasks.TenantTask), as the tenancy layer's tasks do. The periodic
month jobs fan out one coalesced task per organization (foundation.tasks.enqueue_coalesced).
"""

from datetime import UTC, datetime

from celery import shared_task
from django.utils import timezone

from clusters.models import Cell
from foundation.tasks import coalesced_start, enqueue_coalesced
from tenants.tasks import TenantTask

from . import closing, metering

# A per-organization run not started within this long is taken as lost and may be queued again.
COALESCING_HOLD_SECONDS = 900


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


@shared_task(name="billing.tasks.close_months")
def close_months() -> int:
    """Queue the close of every organization's last month once metering has passed it, and
    again for those still waiting for incomplete hours."""
    now = timezone.now()
    month = closing.closable_month(now)
    if month is None:
        return 0
    due = {(organization, month) for organization in closing.organizations_to_close(month)}
    due.update(closing.waiting_drafts(before=closing.period_of(month)[1]))
    return sum(_queue("billing.tasks.close_invoice", *pair) for pair in sorted(due))


@shared_task(name="billing.tasks.refresh_drafts")
def refresh_drafts() -> int:
    """Queue the recomputation of the month-to-date draft of every organization billed this
    month, and of last month's while it is not closed."""
    now = timezone.now()
    queued = 0
    for start in (closing.previous_month_start(now), closing.month_start_of(now)):
        for organization in closing.organizations_to_close(start):
            queued += _queue("billing.tasks.refresh_draft", organization, start)
    return queued


def _queue(task: str, organization: str, start: datetime) -> bool:
    period = f"{start:%Y-%m}"
    return enqueue_coalesced(
        task,
        key=f"{task}:{organization}:{period}",
        hold_seconds=COALESCING_HOLD_SECONDS,
        organization=organization,
        period=period,
    )


def _period_start(period: str) -> datetime:
    return datetime.strptime(period, "%Y-%m").replace(tzinfo=UTC)


@shared_task(base=TenantTask, name="billing.tasks.close_invoice")
def close_invoice(*, organization, period: str) -> str:
    coalesced_start(f"billing.tasks.close_invoice:{organization.public_id}:{period}")
    return closing.invoice_close(organization=organization, period_start=_period_start(period))


@shared_task(base=TenantTask, name="billing.tasks.refresh_draft")
def refresh_draft(*, organization, period: str) -> bool:
    coalesced_start(f"billing.tasks.refresh_draft:{organization.public_id}:{period}")
    draft = closing.draft_refresh(organization=organization, period_start=_period_start(period))
    return draft is not None
