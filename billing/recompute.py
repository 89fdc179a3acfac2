"""A recompute of the ledger over a range of hours (a month, a week after a Prometheus outage),
shared among worker processes: split per cell and chunk of hours, the chunks run as a Celery
group on the metering queue, and each cell's chord callback moves that cell's watermark.

Each chunk recomputes its hours window by window, as a collection does (billing.metering,
windows of ``SLUICE_METERING_MAX_WINDOW_HOURS`` at most, so a task reads no more at once than
a collection) and upserts the snapshots: chunks that overlap, a rerun, or a collection running
meanwhile leave the same ledger. A chunk that fails is reported, not retried: the cell's
callback then leaves its watermark where it was, records which chunks failed in the cell's
cursor (``last_error``, shown in the admin), and the recompute may simply be run again. When
every chunk of a cell succeeded, its watermark moves to the range's end, as the collection
after the last window would, but never backwards, and never over hours the range did not
cover (a watermark still before the range's start stays: the hours between are not metered).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from celery import chord, signature
from celery.result import AsyncResult
from django.conf import settings
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from clusters.models import Cell

from .deltas import Window, hour_start
from .metering import cursor_for, window_recompute
from .models import MeteringCursor

logger = logging.getLogger(__name__)

CHUNK_TASK = "billing.tasks.recompute_chunk"
FINISH_TASK = "billing.tasks.recompute_finish"


@dataclass(frozen=True)
class Chunk:
    """Hours ``[start, end)`` of one cell (``end`` may fall inside its last hour)."""

    cell: str  # the cell's slug
    start: datetime
    end: datetime


def chunks_plan(
    cells: list[str], *, start: datetime, end: datetime, chunk_hours: int
) -> dict[str, list[Chunk]]:
    """The chunks of each cell: ``chunk_hours`` each from the start's hour to ``end``."""
    if chunk_hours < 1:
        raise ValueError("a chunk is at least one hour")
    start = hour_start(start)
    step = timedelta(hours=chunk_hours)
    plan: dict[str, list[Chunk]] = {}
    for cell in cells:
        chunks, at = [], start
        while at < end:
            chunks.append(Chunk(cell, at, min(at + step, end)))
            at += step
        plan[cell] = chunks
    return plan


def chunk_run(cell: Cell, *, start: datetime, end: datetime) -> int:
    """Recompute the cell's hours ``[start, end)`` into the ledger, a window at a time (each
    upserted as it is computed); how many rows were written."""
    max_gap = settings.SLUICE_METERING_MAX_GAP_SECONDS
    step = timedelta(hours=settings.SLUICE_METERING_MAX_WINDOW_HOURS)
    written, at = 0, start
    while at < end:
        until = min(at + step, end)
        window = Window(int(at.timestamp()), until.timestamp())
        written += window_recompute(cell, window, computed_at=until, max_gap=max_gap)
        at = until
    return written


def chunk_outcome(chunk: Chunk) -> dict:
    """Run one chunk; its outcome as the chord's callback reads it (a failure is an outcome,
    not an exception, so that the callback always runs and says which chunks failed)."""
    outcome = {"start": chunk.start.isoformat(), "end": chunk.end.isoformat(), "written": 0}
    try:
        cell = Cell.objects.get(slug=chunk.cell)
        outcome["written"] = chunk_run(cell, start=chunk.start, end=chunk.end)
    except Exception as error:  # any failure is this chunk's: reported, not raised
        logger.exception("recompute of %s from %s to %s failed", chunk.cell, chunk.start, chunk.end)
        outcome["error"] = f"{type(error).__name__}: {error}"[:500]
    return outcome


def cell_finish(cell: Cell, *, start: datetime, end: datetime, outcomes: list[dict]) -> dict:
    """After every chunk of the cell ran: move its watermark to the range's end if all of them
    succeeded (never backwards, and only from inside the range); otherwise leave it and record
    the failed chunks. What happened, as a plain dict."""
    cursor = cursor_for(cell)
    before = cursor.watermark
    failed = [outcome for outcome in outcomes if outcome.get("error")]
    if failed:
        first = failed[0]
        error = (
            f"recompute from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}: {len(failed)} of "
            f"{len(outcomes)} chunks failed, the first from {first['start']}: {first['error']}"
        )
        MeteringCursor.objects.filter(pk=cursor.pk).update(last_error=error[:2000])
        logger.error("%s: %s", cell.slug, error)
    else:
        target = end - timedelta(seconds=settings.SLUICE_METERING_LATENESS_SECONDS)
        MeteringCursor.objects.filter(pk=cursor.pk, watermark__gte=hour_start(start)).update(
            watermark=Greatest(F("watermark"), target)
        )
    cursor.refresh_from_db(fields=["watermark"])
    return {
        "cell": cell.slug,
        "chunks": len(outcomes),
        "written": sum(outcome["written"] for outcome in outcomes),
        "failed": failed,
        "watermark_before": before.isoformat(),
        "watermark": cursor.watermark.isoformat(),
    }


def recompute_start(
    cells: list[Cell],
    *,
    start: datetime,
    end: datetime,
    chunk_hours: int | None = None,
    now: datetime | None = None,
) -> dict[str, AsyncResult]:
    """Queue the recompute of ``[start, end)`` (``end`` no later than now) for each cell: its
    chunks as a group, its callback as the chord's body. The result of each cell's callback."""
    end = min(end, now or timezone.now())
    plan = chunks_plan(
        [cell.slug for cell in cells],
        start=start,
        end=end,
        chunk_hours=chunk_hours or settings.SLUICE_METERING_RECOMPUTE_CHUNK_HOURS,
    )
    results = {}
    for slug, chunks in plan.items():
        if not chunks:
            continue
        header = [
            signature(CHUNK_TASK, kwargs={"cell": slug, **_bounds(c.start, c.end)}) for c in chunks
        ]
        body = signature(FINISH_TASK, kwargs={"cell": slug, **_bounds(chunks[0].start, end)})
        results[slug] = chord(header)(body)
    return results


def _bounds(start: datetime, end: datetime) -> dict[str, str]:
    return {"start": start.astimezone(UTC).isoformat(), "end": end.astimezone(UTC).isoformat()}
