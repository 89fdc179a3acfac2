"""Usage exports: an organization's closed month, as gzip CSV in the installation's bucket, for
it to download.

An export is made when a month closes (``export_after_close``, queued in the close's
transaction) and when a member who may read invoices asks for one of a closed month
(``export_request``, audited). Either way a ``UsageExport`` row records it (pending, done or
failed, with the error) and the task ``billing.tasks.export_month`` writes it
(``export_write``):

    usage/{organization id}/{yyyy}/{mm}/{export id}/usage-hours.csv.gz
                                                    usage-adjustments.csv.gz
                                                    invoice-lines.csv.gz
                                                    manifest.json

- ``usage-hours``: every ledger hour of the month (``UsageHour``), final once the month closed;
- ``usage-adjustments``: the adjustments to the month's hours found after it closed, and those
  billed on its invoice (whatever hour they correct);
- ``invoice-lines``: the lines of the month's invoice, as its CSV download has them;
- ``manifest.json``, written last: the export's id, the month, when it was made, and each
  object's key, row count (the header row not counted), size and SHA-256 of its bytes as
  stored. An export without its manifest did not finish.

The export's id is in every key, so exporting a month again writes a new set beside the
first, and every object is written once (``If-None-Match: *``, ``export_store``). Beat queues again
the exports left pending (``exports_resume``). Rows are read
from PostgreSQL in chunks (``.iterator``) and streamed through gzip to S3: a month is never held
in memory. One run writes an export at a time (a claim with a lease); a run that finds an
object already there (the retry of a run that died) accepts it only if it holds the same bytes.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from foundation.errors import ExportsNotConfigured, InvalidInput, MonthNotClosed
from foundation.tasks import enqueue_on_commit
from tenants.audit import Actor, audit_record
from tenants.models import Organization

from . import export_store as store
from .invoices import CSV_COLUMNS as INVOICE_LINE_COLUMNS
from .invoices import csv_instant, csv_row, month_period
from .models import (
    ClosedMonth,
    ExportState,
    ExportTrigger,
    Invoice,
    InvoiceState,
    UsageAdjustment,
    UsageExport,
    UsageHour,
)
from .selectors import UNITS
from .services import month_start

logger = logging.getLogger(__name__)

EXPORT_TASK = "billing.tasks.export_month"
# A pending export nobody has started this long after it was made lost its task: beat queues
# it again (``exports_resume``).
RESUME_AFTER = timedelta(minutes=10)
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
# Text handed to gzip at a time: big enough for zlib to work well, small against a part.
TEXT_CHUNK = 64 * 1024
# A month from 1970 (as the invoices filter takes it), in ASCII digits.
_MONTH = re.compile(r"(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])", re.ASCII)

USAGE_HOUR_COLUMNS = ("cluster_id", "dimension", "unit", "hour", "quantity", "complete")
ADJUSTMENT_COLUMNS = ("cluster_id", "dimension", "unit", "hour", "quantity", "created_at")
ADJUSTMENT_COLUMNS += ("billed_month",)


@dataclass(frozen=True)
class ExportFile:
    """One object of an export, as its manifest lists it."""

    name: str
    key: str
    rows: int
    bytes: int
    sha256: str
    content_type: str = store.GZIP_CONTENT_TYPE


# Asking for one ------------------------------------------------------------------------------


def month_parse(text, *, field: str = "month") -> datetime:
    """A calendar month written YYYY-MM in ASCII digits, from 1970, as its first instant
    (UTC)."""
    match = _MONTH.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidInput("Not a month: YYYY-MM from 1970-01, e.g. 2026-10", field=field)
    return datetime(int(match[1]), int(match[2]), 1, tzinfo=UTC)


def month_label(period_start: datetime) -> str:
    return f"{period_start:%Y-%m}"


def export_request(
    *, organization: Organization, period_start: datetime, actor: Actor, now: datetime | None = None
) -> UsageExport:
    """Export the organization's month again, now: a new set of objects, audited. The month
    must be closed (``MonthNotClosed``; a month still to come is ``InvalidInput``)."""
    now = now or timezone.now()
    if period_start > month_start(now):
        raise InvalidInput(
            "The month has not begun: only a closed month is exported", field="month"
        )
    if not ClosedMonth.objects.filter(
        organization=organization, period_start=period_start
    ).exists():
        raise MonthNotClosed(
            f"{month_label(period_start)} is not closed yet: a month is exported once its "
            "invoice is issued, after the month ends"
        )
    export = _export_create(organization, period_start, ExportTrigger.REQUEST)
    audit_record(
        organization=organization,
        actor=actor,
        action="usage_export.requested",
        target=export,
        after={"month": month_label(period_start), "prefix": export.prefix},
    )
    return export


def export_after_close(*, organization: Organization, period_start: datetime) -> None:
    """The month close's export of the month, once (called in the close's transaction; the
    task runs when it commits). Nothing when exports are not configured."""
    if not store.store_configured():
        return
    made = UsageExport.objects.filter(
        organization=organization, period_start=period_start, trigger=ExportTrigger.MONTH_CLOSE
    )
    if not made.exists():
        _export_create(organization, period_start, ExportTrigger.MONTH_CLOSE)


def _export_create(organization: Organization, period_start: datetime, trigger: str) -> UsageExport:
    if not store.store_configured():
        raise ExportsNotConfigured(
            "No bucket is configured for usage exports (SLUICE_EXPORT_BUCKET)"
        )
    export = UsageExport(organization=organization, period_start=period_start, trigger=trigger)
    export.bucket = settings.SLUICE_EXPORT_BUCKET
    export.prefix = export_prefix(organization, period_start, export.public_id)
    export.save()
    enqueue_on_commit(EXPORT_TASK, organization=organization.public_id, export=export.public_id)
    return export


def export_prefix(organization: Organization, period_start: datetime, export_id: str) -> str:
    return f"usage/{organization.public_id}/{period_start:%Y}/{period_start:%m}/{export_id}/"


# Writing it ----------------------------------------------------------------------------------


def export_write(*, export: UsageExport, now: datetime | None = None) -> UsageExport:
    """Write the export's objects and manifest, then record it done (or failed, with why).
    Safe to run twice, or twice at once: an export done, or held by another run, is left
    alone."""
    claim = _claim(export, now or timezone.now())
    if claim is None:
        export.refresh_from_db()
        return export
    client = store.s3_client()
    try:
        files = [
            _write_csv(client, export, "usage-hours", USAGE_HOUR_COLUMNS, _hour_rows(export)),
            _write_csv(
                client, export, "usage-adjustments", ADJUSTMENT_COLUMNS, _adjustment_rows(export)
            ),
            _write_csv(
                client, export, "invoice-lines", INVOICE_LINE_COLUMNS, _invoice_line_rows(export)
            ),
        ]
        _write_once(
            client,
            export,
            lambda: store.put_once(
                client,
                bucket=export.bucket,
                key=export.prefix + MANIFEST,
                body=manifest_bytes(export, files),
                content_type=store.JSON_CONTENT_TYPE,
            ),
        )
    except (*store.StoreError, store.ObjectExists) as error:
        logger.warning("usage export %s failed: %s", export.public_id, error)
        _finish(export, claim, state=ExportState.FAILED, error=str(error)[:2000])
    except BaseException as error:
        _finish(export, claim, state=ExportState.FAILED, error=f"{type(error).__name__}")
        raise
    else:
        _finish(export, claim, state=ExportState.DONE, files=[asdict(f) for f in files])
    export.refresh_from_db()
    return export


def exports_resume(*, now: datetime | None = None) -> int:
    """Queue again (fleet-wide) the pending exports no run started ``RESUME_AFTER`` after they
    were made (their task was lost), and those whose run's claim lapsed (it died); returns how
    many. Queued twice, an export is still written by one run."""
    now = now or timezone.now()
    lease = timedelta(seconds=settings.SLUICE_EXPORT_CLAIM_SECONDS)
    stale = UsageExport.unscoped_all_tenants.filter(state=ExportState.PENDING).filter(
        Q(claimed_at__isnull=True, created_at__lt=now - RESUME_AFTER)
        | Q(claimed_at__lt=now - lease)
    )
    queued = 0
    for export_id, organization_id in stale.values_list("public_id", "organization__public_id"):
        enqueue_on_commit(EXPORT_TASK, organization=organization_id, export=export_id)
        queued += 1
    return queued


def _claim(export: UsageExport, now: datetime) -> datetime | None:
    """Take the export for this run (its ``claimed_at`` is the run's fencing token), unless it
    is no longer pending or another run holds it."""
    lease = timedelta(seconds=settings.SLUICE_EXPORT_CLAIM_SECONDS)
    taken = (
        UsageExport.objects.filter(pk=export.pk, state=ExportState.PENDING)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - lease))
        .update(claimed_at=now)
    )
    return now if taken else None


def _finish(
    export: UsageExport, claim: datetime, *, state: ExportState, error: str = "", files=()
) -> None:
    # Only the run that holds the claim records the outcome.
    UsageExport.objects.filter(pk=export.pk, claimed_at=claim).update(
        state=ExportState(state), error=error, files=list(files), completed_at=timezone.now()
    )


def _write_csv(client, export, name: str, columns: tuple[str, ...], rows: Iterable) -> ExportFile:
    key = f"{export.prefix}{name}.csv.gz"
    counted = [0]  # data rows, counted as they stream

    def write() -> store.StoredObject:
        writer = store.GzipObjectWriter(client, bucket=export.bucket, key=key)
        for text in _csv_chunks(columns, rows, counted):
            writer.add(text)
        return writer.close()

    stored = _write_once(client, export, write)
    return ExportFile(name=name, key=key, rows=counted[0], bytes=stored.bytes, sha256=stored.sha256)


def _write_once(client, export: UsageExport, write) -> store.StoredObject:
    """``write()``; when its key already holds an object (an earlier run of this export got
    that far and died), that object is taken as written if it holds the same bytes."""
    try:
        return write()
    except store.ObjectExists as exists:
        attempted = exists.attempted
        found = store.stored_sha256(client, bucket=export.bucket, key=attempted.key)
        if found != attempted.sha256:
            raise
        return attempted


def _csv_chunks(columns: tuple[str, ...], rows: Iterable, counted: list[int]) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(row)
        counted[0] += 1
        if out.tell() >= TEXT_CHUNK:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def _hour_rows(export: UsageExport) -> Iterator[list]:
    start, end = month_period(export.period_start.year, export.period_start.month)
    hours = UsageHour.objects.filter(
        organization_id=export.organization_id, hour__gte=start, hour__lt=end
    ).order_by("hour", "cluster_id", "dimension")
    fields = ("cluster__public_id", "dimension", "hour", "quantity", "complete")
    for cluster, dimension, hour, quantity, complete in _streamed(hours.values_list(*fields)):
        yield [cluster, dimension, UNITS[dimension], csv_instant(hour), quantity, complete]


def _adjustment_rows(export: UsageExport) -> Iterator[list]:
    start, end = month_period(export.period_start.year, export.period_start.month)
    adjustments = (
        UsageAdjustment.objects.filter(organization_id=export.organization_id)
        .filter(Q(hour__gte=start, hour__lt=end) | Q(billed_period_start=start))
        .order_by("hour", "cluster_id", "dimension", "created_at", "pk")
    )
    fields = ("cluster__public_id", "dimension", "hour", "quantity", "created_at")
    for row in _streamed(adjustments.values_list(*fields, "billed_period_start")):
        cluster, dimension, hour, quantity, created_at, billed = row
        billed_month = month_label(billed) if billed is not None else ""
        yield [
            cluster,
            dimension,
            UNITS[dimension],
            csv_instant(hour),
            quantity,
            csv_instant(created_at),
            billed_month,
        ]


def _invoice_line_rows(export: UsageExport) -> Iterator[list]:
    invoice = month_invoice(export)
    if invoice is not None:
        yield from map(csv_row, _streamed(invoice.lines.order_by("position")))


def month_invoice(export: UsageExport) -> Invoice | None:
    return (
        Invoice.objects.filter(
            organization_id=export.organization_id, period_start=export.period_start
        )
        .exclude(state__in=(InvoiceState.VOID, InvoiceState.DRAFT))
        .first()
    )


def _streamed(queryset: QuerySet) -> Iterator:
    return queryset.iterator(chunk_size=settings.SLUICE_EXPORT_READ_CHUNK_ROWS)


def manifest_bytes(export: UsageExport, files: list[ExportFile]) -> bytes:
    start, end = month_period(export.period_start.year, export.period_start.month)
    invoice = month_invoice(export)
    manifest = {
        "version": MANIFEST_VERSION,
        "export_id": export.public_id,
        "organization_id": export.organization.public_id,
        "month": month_label(start),
        "period_start": csv_instant(start),
        "period_end": csv_instant(end),
        "created_at": csv_instant(export.created_at),
        "trigger": export.trigger,
        "invoice_id": invoice.public_id if invoice is not None else None,
        "objects": [
            {
                "name": file.name,
                "key": file.key,
                "content_type": file.content_type,
                "rows": file.rows,
                "bytes": file.bytes,
                "sha256": file.sha256,
            }
            for file in files
        ],
    }
    return (json.dumps(manifest, indent=2, sort_keys=False) + "\n").encode()


# Reading them back ---------------------------------------------------------------------------


def exports_of(*, organization: Organization) -> QuerySet[UsageExport]:
    """Newest first."""
    return UsageExport.objects.filter(organization=organization).order_by("-created_at", "-id")


def export_of(*, organization: Organization, public_id: str) -> UsageExport | None:
    """The organization's export with that id; ``None`` for none (another organization's
    included)."""
    return UsageExport.objects.filter(organization=organization, public_id=public_id).first()


def exportable_months(*, organization: Organization) -> list[datetime]:
    """The organization's closed months, newest first: those it may export."""
    closed = ClosedMonth.objects.filter(organization=organization).order_by("-period_start")
    return list(closed.values_list("period_start", flat=True))


def export_file_names(export: UsageExport) -> list[str]:
    """What may be downloaded of the export: its objects and manifest, once it is done."""
    if export.state != ExportState.DONE:
        return []
    return [file["name"] for file in export.files] + [MANIFEST]


def export_download_url(export: UsageExport, name: str, *, client=None) -> str | None:
    """A short-lived pre-signed link to one object of a done export (``name`` as
    ``export_file_names`` lists it); ``None`` for a name the export does not have."""
    if name not in export_file_names(export):
        return None
    keys = {file["name"]: file["key"] for file in export.files}
    key = keys.get(name, export.prefix + MANIFEST)
    filename = (
        f"sluice-{month_label(export.period_start)}-{export.public_id}-{key.rsplit('/', 1)[1]}"
    )
    return store.download_url(
        client or store.s3_client(), bucket=export.bucket, key=key, filename=filename
    )


def export_download_urls(export: UsageExport) -> dict[str, str]:
    """Every download link of the export, by name (none until it is done)."""
    names = export_file_names(export)
    if not names:
        return {}
    client = store.s3_client()
    return {name: export_download_url(export, name, client=client) for name in names}
