"""Celery tasks of the billing app: thin, loading what they act on and calling a service.

Metering works per cell, fleet-wide: a cell is not a tenant's object, so its task takes the
cell's slug (its stable public name) and reads across tenants with the unscoped managers. A
billing task that acts on one organization's objects takes public ids and runs inside that
tenant's scope (tenants.tasks.TenantTask), as the tenancy layer's tasks do. The month
close and the drafts run fleet-wide, a batch of organizations per transaction. A Stripe event is
named by Stripe's id; which organization it concerns is found in applying it.
"""

from datetime import datetime
from smtplib import SMTPException

from celery import shared_task
from django.utils import timezone

from clusters.models import Cell
from tenants.tasks import TenantTask

from . import (
    budget_notices,
    caps,
    closing,
    exports,
    final_invoices,
    ledger_partitions,
    metering,
    outbox,
    recompute,
    spend_watch,
    stripe_events,
    webhook_outbox,
)
from .models import BudgetAlert, UsageExport
from .services import month_start


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
    found = Cell.objects.get(slug=cell)
    written = metering.collect_cell(found).written
    check_spend.delay(cell=cell)
    return written


@shared_task(name="billing.tasks.recompute_chunk")
def recompute_chunk(*, cell: str, start: str, end: str) -> dict:
    """Recompute one chunk of a cell's hours (ISO instants) into the ledger; its outcome, a
    failure included (the chord's callback decides what it means for the watermark)."""
    chunk = recompute.Chunk(cell, datetime.fromisoformat(start), datetime.fromisoformat(end))
    return recompute.chunk_outcome(chunk)


@shared_task(name="billing.tasks.recompute_finish")
def recompute_finish(outcomes: list[dict], *, cell: str, start: str, end: str) -> dict:
    """The callback of a cell's recompute chord: its watermark moved if every chunk succeeded."""
    return recompute.cell_finish(
        Cell.objects.get(slug=cell),
        start=datetime.fromisoformat(start),
        end=datetime.fromisoformat(end),
        outcomes=outcomes,
    )


@shared_task(name="billing.tasks.apply_spend_holds", ignore_result=True)
def apply_spend_holds(*, organization_id: int, period_start: str) -> None:
    """Throttle (or lift) the organization's clusters as its open spend-cap holds of the month
    say (queued by the spend check when they moved; fleet-wide like the check: the
    organization is named by its key, its clusters changed in its own scope)."""
    caps.holds_apply(organization_id, period_start=datetime.fromisoformat(period_start))


@shared_task(name="billing.tasks.check_spend")
def check_spend(*, cell: str | None = None) -> int:
    """Compare the month so far of every organization with a spend cap (those on ``cell``, the
    cell just metered, when given) with its caps; returns how many holds opened or lifted."""
    cell_id = Cell.objects.filter(slug=cell).values_list("pk", flat=True).first() if cell else None
    ids = spend_watch.organizations_to_check(cell_id=cell_id)
    return spend_watch.spend_check(organization_ids=ids).holds_changed


@shared_task(name="billing.tasks.close_months")
def close_months() -> int:
    """Close last month for every organization once metering has passed it (those waiting for
    incomplete hours are tried again on the next run); returns how many were closed. Two runs
    at once are safe: the second finds each month closed or waits for the first's lock."""
    month = closing.closable_month(timezone.now())
    if month is None:
        return 0
    outcomes = closing.month_close(
        period_start=month, organization_ids=closing.organizations_to_close(month)
    )
    return sum(outcome in closing.CLOSED_OUTCOMES for outcome in outcomes.values())


@shared_task(name="billing.tasks.close_closed_organizations")
def close_closed_organizations() -> int:
    """Make the final invoice of every closed organization metering has caught up with (its
    months still open, the partial month of its closing included); returns how many invoices
    were closed. Safe to run twice at once, like the month close it uses."""
    return final_invoices.final_invoices_close()


@shared_task(name="billing.tasks.refresh_drafts")
def refresh_drafts() -> int:
    """Recompute the month-to-date draft of every organization billed this month, and last
    month's while it is not closed."""
    now = timezone.now()
    written = 0
    for start in (closing.previous_month_start(now), month_start(now)):
        written += closing.drafts_refresh(
            period_start=start, organization_ids=closing.organizations_to_close(start)
        )
    return written


@shared_task(name="billing.tasks.push_to_stripe")
def push_to_stripe(*, limit: int = outbox.PUSHES_PER_RUN) -> int:
    """Push due invoices to Stripe (fleet-wide: the outbox claims rows across tenants and enters
    each invoice's tenant itself); queued when an invoice closes, and by beat for retries. Safe
    to run many at once: each row is claimed by one run."""
    return outbox.outbox_push_due(limit=limit)


@shared_task(name="billing.tasks.apply_stripe_event")
def apply_stripe_event(*, event: str) -> str:
    """Apply one stored Stripe event (``event`` is Stripe's ``evt_…`` id); its outcome."""
    return stripe_events.stripe_event_apply(event_id=event).outcome


@shared_task(name="billing.tasks.retry_pending_stripe_events")
def retry_pending_stripe_events() -> int:
    """Apply again the Stripe events left pending (Stripe unreachable, a task lost)."""
    return stripe_events.stripe_events_retry_pending()


@shared_task(base=TenantTask, name="billing.tasks.export_month", ignore_result=True)
def export_month(*, organization, export: str) -> str:
    """Write one usage export (``export`` is its ``uexp_…`` id); its state after. Safe to run
    twice, or twice at once: the export is written by one run, once."""
    found = UsageExport.objects.filter(public_id=export).first()
    if found is None:
        return "missing"
    return exports.export_write(export=found).state


@shared_task(name="billing.tasks.resume_usage_exports")
def resume_usage_exports() -> int:
    """Queue again the usage exports left pending (their task lost, or their run dead); how
    many. Safe to run twice at once: an export is written by one run."""
    return exports.exports_resume()


@shared_task(
    base=TenantTask,
    name="billing.tasks.send_budget_alert_email",
    autoretry_for=(SMTPException, OSError),
    retry_backoff=True,
    max_retries=6,
    ignore_result=True,
)
def send_budget_alert_email(*, organization, alert: str) -> None:
    """Mail a fired budget alert (``alert`` is its event id), once."""
    found = BudgetAlert.objects.filter(public_id=alert).first()
    if found is not None:
        budget_notices.alert_send_email(alert=found)


@shared_task(name="billing.tasks.deliver_webhooks")
def deliver_webhooks(*, limit: int = webhook_outbox.POSTS_PER_RUN) -> int:
    """Post due webhook deliveries (fleet-wide, each claimed by one run); queued when an alert
    fires, and by beat for the retries. How many were delivered."""
    return webhook_outbox.deliveries_post_due(limit=limit)


@shared_task(name="billing.tasks.maintain_ledger_partitions")
def maintain_ledger_partitions() -> dict:
    """Make the ledger's partitions ahead (and of any month found in the default partition),
    then detach the months past the retention that are closed and exported (PostgreSQL; nothing
    on SQLite). Safe to run twice at once: the runs take turns on one lock."""
    made = ledger_partitions.partitions_ensure()
    retired = ledger_partitions.months_retire()
    return {"made": made, "archived": retired.archived, "kept": retired.kept}
