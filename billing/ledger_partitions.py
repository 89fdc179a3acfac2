"""The ledger's monthly partitions on PostgreSQL: making them ahead, and retiring old months.

On PostgreSQL ``billing_usagehour`` is partitioned by range on ``hour`` (migration 0013), one
partition per UTC month named ``billing_usagehour_YYYY_MM``, so a read of an organization's
month touches that month's partition only, and an old month leaves the table whole. SQLite
keeps one plain table, and everything here does nothing there.

- ``partitions_ensure`` makes the current month's partition and the next
  ``SLUICE_LEDGER_PARTITIONS_AHEAD_MONTHS``. The DEFAULT partition is a safety net that stays
  empty: an hour of a month without its partition lands there (a defect, shown on /metrics as
  ``sluice_ledger_default_partition_rows``), and the next run makes that month's partition and
  moves its rows into it (unless the month was detached: those stay, for an operator).
- ``months_retire`` detaches the months older than ``SLUICE_LEDGER_RETENTION_MONTHS`` (0: none),
  each only once every organization with hours in it has closed the month and has an export of
  it done whose ``usage-hours`` object holds as many rows as the partition has of that
  organization. A month short of that stays; its missing exports are queued. A detached month
  is kept as ``billing_usagehour_archived_YYYY_MM`` (without its foreign keys: an archive holds
  no cluster or organization back) for an operator to drop.

Every change takes one transaction-scoped advisory lock, so two runs at once take turns and the
second finds the work done.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from tenants.models import Organization
from tenants.scoping import tenant_scope

from .exports import export_after_close
from .invoices import month_period
from .models import ClosedMonth, ExportState, UsageExport
from .services import month_start

logger = logging.getLogger(__name__)

PARENT = "billing_usagehour"
DEFAULT_PARTITION = f"{PARENT}_default"
_MONTHLY = re.compile(rf"{PARENT}_(\d{{4}})_(\d{{2}})", re.ASCII)
# pg_advisory_xact_lock's key for changes to the ledger's partitions ("sluice-ledger").
_LOCK_KEY = 0x51_1CE_1ED6
_HOURS_EXPORTED = "usage-hours"


def partition_name(month: datetime) -> str:
    return f"{PARENT}_{month:%Y_%m}"


def archived_name(month: datetime) -> str:
    return f"{PARENT}_archived_{month:%Y_%m}"


def months_from(first: datetime, count: int) -> list[datetime]:
    """``count`` months from ``first`` (a month's first instant); a negative count goes back."""
    index = first.year * 12 + first.month - 1
    step = 1 if count >= 0 else -1
    return [
        datetime((index + n) // 12, (index + n) % 12 + 1, 1, tzinfo=UTC)
        for n in range(0, count, step)
    ]


def partitioned() -> bool:
    """Whether the ledger is a partitioned table (PostgreSQL, once migrated)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [PARENT])
        found = cursor.fetchone()
    return found is not None and found[0] == "p"


def partitions() -> dict[datetime, str]:
    """The monthly partitions attached to the ledger, by month."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT child.relname FROM pg_inherits JOIN pg_class child ON child.oid = inhrelid "
            "WHERE inhparent = to_regclass(%s)",
            [PARENT],
        )
        names = [name for (name,) in cursor.fetchall()]
    monthly = (_MONTHLY.fullmatch(name) for name in names)
    return {datetime(int(m[1]), int(m[2]), 1, tzinfo=UTC): m[0] for m in monthly if m is not None}


def default_rows() -> int:
    """Hours in the DEFAULT partition: 0 unless a month lacked its partition."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {DEFAULT_PARTITION}")  # noqa: S608 - a constant
        return cursor.fetchone()[0]


def partitions_ensure(*, now: datetime | None = None, ahead: int | None = None) -> list[str]:
    """Make the partitions of the current month, the ``ahead`` next ones and any month with
    hours in the DEFAULT partition (moving them in); the names made. Safe to run twice at
    once."""
    if not partitioned():
        return []
    now = now or timezone.now()
    ahead = settings.SLUICE_LEDGER_PARTITIONS_AHEAD_MONTHS if ahead is None else ahead
    made = []
    with transaction.atomic():
        _lock()
        existing = partitions()
        wanted = set(months_from(month_start(now), ahead + 1)) | _default_months()
        for month in sorted(wanted - existing.keys()):
            if _archived(month):
                # Hours of a month already detached: left in the default partition (and on
                # /metrics) for an operator, rather than a second table of the month.
                logger.error(
                    "ledger: hours of %s, a detached month, are in the default partition",
                    f"{month:%Y-%m}",
                )
                continue
            made.append(_partition_make(month))
    return made


def _archived(month: datetime) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [archived_name(month)])
        return cursor.fetchone()[0]


def _default_months() -> set[datetime]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT date_trunc('month', hour AT TIME ZONE 'UTC') "  # noqa: S608
            f"FROM {DEFAULT_PARTITION}"
        )
        return {month.replace(tzinfo=UTC) for (month,) in cursor.fetchall()}


def _partition_make(month: datetime) -> str:
    """Made as a table of its own, given the month's rows from the DEFAULT partition, then
    attached: attaching checks that the DEFAULT partition holds none of the month any more."""
    name = partition_name(month)
    start, end = (instant.isoformat() for instant in month_period(month.year, month.month))
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
        cursor.execute(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} "  # noqa: S608 - names are ours
            "WHERE hour >= %s AND hour < %s RETURNING *) "
            f"INSERT INTO {name} SELECT * FROM moved",
            [start, end],
        )
        moved = cursor.rowcount
        cursor.execute(
            f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM ('{start}') TO ('{end}')"
        )
    if moved:
        logger.error(
            "ledger: %s hours of %s were in the default partition, moved to %s",
            moved,
            f"{month:%Y-%m}",
            name,
        )
    return name


@dataclass
class Retirement:
    """What one retention run did: months archived, and months kept (why, by month)."""

    archived: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)


def months_retire(*, now: datetime | None = None) -> Retirement:
    """Detach each month older than the retention whose every organization closed it and has
    its export confirmed; queue the exports still missing. Never the open month."""
    done = Retirement()
    retention = settings.SLUICE_LEDGER_RETENTION_MONTHS
    if not retention or not partitioned():
        return done
    current = month_start(now or timezone.now())
    # The retention counts whole months before the current one, which is never retired.
    cutoff = months_from(current, -retention - 1)[-1]
    for month in sorted(month for month in partitions() if month < cutoff):
        held_back = _month_retire(month)
        if held_back:
            done.kept[f"{month:%Y-%m}"] = held_back
            logger.warning("ledger: %s kept past its retention: %s", f"{month:%Y-%m}", held_back)
        else:
            done.archived.append(archived_name(month))
    return done


def _month_retire(month: datetime) -> str:
    """Archive the month's partition if it may go; else why not (and its exports queued)."""
    with transaction.atomic():
        _lock()
        name = partitions().get(month)
        if name is None:
            return ""
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT organization_id, count(*) FROM {name} GROUP BY organization_id"  # noqa: S608
            )
            held = dict(cursor.fetchall())
        not_closed = held.keys() - set(
            ClosedMonth.unscoped_all_tenants.filter(
                period_start=month, organization_id__in=held
            ).values_list("organization_id", flat=True)
        )
        if not_closed:
            return f"{len(not_closed)} organization(s) have not closed the month"
        not_exported = held.keys() - _exports_confirmed(month, held)
        if not_exported:
            for organization in Organization.objects.filter(pk__in=not_exported):
                with tenant_scope(organization):
                    export_after_close(organization=organization, period_start=month)
            return f"{len(not_exported)} organization(s) have no confirmed export of the month"
        _partition_archive(month, name)
    return ""


def _exports_confirmed(month: datetime, held: dict[int, int]) -> set[int]:
    """The organizations with an export of the month done whose ledger hours are as many as
    the partition holds of theirs."""
    confirmed = set()
    done = UsageExport.unscoped_all_tenants.filter(
        period_start=month, organization_id__in=held, state=ExportState.DONE
    ).values_list("organization_id", "files")
    for organization, files in done:
        exported = [f["rows"] for f in files if f.get("name") == _HOURS_EXPORTED]
        if exported and exported[0] == held[organization]:
            confirmed.add(organization)
    return confirmed


def _partition_archive(month: datetime, name: str) -> None:
    archived = archived_name(month)
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {name}")
        cursor.execute(f"ALTER TABLE {name} RENAME TO {archived}")
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(%s) AND contype = 'f'",
            [archived],
        )
        for (constraint,) in cursor.fetchall():
            cursor.execute(f'ALTER TABLE {archived} DROP CONSTRAINT "{constraint}"')
    logger.info("ledger: %s detached, kept as %s", f"{month:%Y-%m}", archived)


def _lock() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
