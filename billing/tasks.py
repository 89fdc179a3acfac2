"""Celery tasks of the billing app: thin, loading by id and calling the metering services."""

from celery import shared_task

from clusters.models import Cell

from . import metering


@shared_task(name="billing.tasks.collect_usage")
def collect_usage() -> int:
    """Start a collection of every cell (one task each, so a slow Prometheus holds up only its
    own cell)."""
    cell_pks = list(Cell.objects.values_list("pk", flat=True))
    for cell_pk in cell_pks:
        collect_cell_usage.delay(cell_pk)
    return len(cell_pks)


@shared_task(name="billing.tasks.collect_cell_usage")
def collect_cell_usage(cell_pk: int) -> int:
    """Recompute the cell's open hours into the ledger; a Prometheus that cannot answer leaves
    the watermark where it was, and the next beat tries again."""
    cell = Cell.objects.get(pk=cell_pk)
    return metering.collect_cell(cell).written
