"""The ledger's monthly partitions, on the harness's PostgreSQL: where rows land (pg_inherits,
tableoid), the DEFAULT partition kept empty and its figure on /metrics, partitions made ahead by
the beat task (twice at once), partition pruning in the plans of the reads billing issues, and
retention detaching only closed months whose export (to moto's S3) is confirmed."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from billing import ledger_partitions, rating_inputs
from billing.closing import Outcome, invoice_close
from billing.metrics import ledger_figures
from billing.models import ExportState, UsageExport, UsageHour
from billing.services import HourSnapshot, month_start, record_hours
from billing.tasks import maintain_ledger_partitions
from clusters.models import Cluster, ClusterSize, Dimension
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, make_cluster, make_org

HOUR = timedelta(hours=1)
MARCH, APRIL, MAY = (datetime(2026, month, 1, tzinfo=UTC) for month in (3, 4, 5))


def month_of_hours(cluster, start: datetime, hours: int = 24) -> None:
    """``hours`` hours of partition-hours from ``start``, complete."""
    snapshots = [
        HourSnapshot(cluster.pk, Dimension.PARTITION_HOURS, start + n * HOUR, 6, True)
        for n in range(hours)
    ]
    record_hours(snapshots, now=start + (hours + 1) * HOUR)


def cluster_since(organization, start: datetime, name: str = "events"):
    cluster, _ = make_cluster(organization, name=name)
    ClusterSize.unscoped_all_tenants.filter(cluster=cluster).update(since=start)
    Cluster.unscoped_all_tenants.filter(pk=cluster.pk).update(created_at=start)
    return cluster


def rows_by_table() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text, count(*) FROM billing_usagehour GROUP BY 1"
        )
        return dict(cursor.fetchall())


def attached() -> set[str]:
    return set(ledger_partitions.partitions().values())


def default_figure() -> float:
    (family,) = list(ledger_figures())
    assert family.name == "sluice_ledger_default_partition_rows"
    return family.samples[0].value


def drop_tables(*names: str) -> None:
    with connection.cursor() as cursor:
        for name in names:
            cursor.execute(f"DROP TABLE IF EXISTS {name}")


@pytest.fixture
def org():
    return make_org(owner=UserFactory(), name="Acme")


@pytest.mark.django_db
def test_the_ledger_is_partitioned_and_rows_of_three_months_land_in_three_partitions(org):
    assert ledger_partitions.partitioned()
    made = ledger_partitions.partitions_ensure(now=MARCH + 9 * 24 * HOUR, ahead=2)
    assert {"billing_usagehour_2026_03", "billing_usagehour_2026_04"} <= attached()
    assert set(made) <= {f"billing_usagehour_2026_0{m}" for m in (3, 4, 5)}
    cluster = cluster_since(org, MARCH)

    for month in (MARCH, APRIL, MAY):
        month_of_hours(cluster, month)

    assert rows_by_table() == {
        "billing_usagehour_2026_03": 24,
        "billing_usagehour_2026_04": 24,
        "billing_usagehour_2026_05": 24,
    }
    assert ledger_partitions.default_rows() == 0
    assert default_figure() == 0
    # The ORM's primary key is still ``id``: rows read, change and go by it.
    row = UsageHour.unscoped_all_tenants.filter(hour=APRIL).get()
    assert UsageHour.unscoped_all_tenants.get(pk=row.pk).hour == APRIL
    # The ledger's upsert (ON CONFLICT on usage_hour_unique) replaces the hour in place.
    record_hours([HourSnapshot(cluster.pk, Dimension.PARTITION_HOURS, APRIL, 9, True)], now=MAY)
    assert UsageHour.unscoped_all_tenants.get(pk=row.pk).quantity == 9
    assert rows_by_table()["billing_usagehour_2026_04"] == 24


@pytest.mark.django_db
def test_an_hour_of_a_month_without_its_partition_is_shown_and_moved_out_of_the_default(org):
    lost = datetime(2032, 2, 10, tzinfo=UTC)
    assert "billing_usagehour_2032_02" not in attached()
    cluster = cluster_since(org, lost)

    month_of_hours(cluster, lost, hours=3)

    assert rows_by_table() == {"billing_usagehour_default": 3}
    assert default_figure() == 3
    ids = set(UsageHour.unscoped_all_tenants.values_list("pk", flat=True))

    made = ledger_partitions.partitions_ensure(now=MARCH, ahead=0)

    assert "billing_usagehour_2032_02" in made
    assert rows_by_table() == {"billing_usagehour_2032_02": 3}
    assert set(UsageHour.unscoped_all_tenants.values_list("pk", flat=True)) == ids
    assert default_figure() == 0


@pytest.mark.django_db(transaction=True)
def test_the_beat_task_makes_partitions_ahead_once_when_run_twice_at_once(settings):
    settings.SLUICE_LEDGER_PARTITIONS_AHEAD_MONTHS = 6
    settings.SLUICE_LEDGER_RETENTION_MONTHS = 0
    before = attached()
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(maintain_ledger_partitions())
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    made = [name for result in results for name in result["made"]]
    try:
        assert errors == []
        expected = {
            ledger_partitions.partition_name(month)
            for month in ledger_partitions.months_from(month_start(datetime.now(UTC)), 7)
        }
        assert attached() >= expected
        assert sorted(made) == sorted(expected - before)  # each made once, by one of the runs
        assert maintain_ledger_partitions()["made"] == []
    finally:
        drop_tables(*made)


# Pruning -------------------------------------------------------------------------------------


def partitions_in_plans(queries) -> set[str]:
    """The ledger partitions EXPLAIN names for each read of the ledger among ``queries``."""
    named = set()
    reads = [q["sql"] for q in queries if "billing_usagehour" in q["sql"]]
    reads = [sql[sql.index("SELECT") :] for sql in reads if "SELECT" in sql]
    assert reads, "no read of the ledger captured"
    with connection.cursor() as cursor:
        for sql in reads:
            cursor.execute(f"EXPLAIN {sql}")
            plan = "\n".join(line for (line,) in cursor.fetchall())
            named |= set(re.findall(r"billing_usagehour_(\d{4}_\d{2}|default)\b", plan))
    return named


@pytest.mark.django_db
def test_reads_of_a_month_touch_only_that_months_partition(org):
    ledger_partitions.partitions_ensure(now=MARCH, ahead=2)
    cluster = cluster_since(org, MARCH)
    for month in (MARCH, APRIL, MAY):
        month_of_hours(cluster, month)

    with CaptureQueriesContext(connection) as rows_read, tenant_scope(org):
        rows = list(rating_inputs.usage_rows(organization=org, start=APRIL, end=MAY))
    with CaptureQueriesContext(connection) as summed_read:
        summed = rating_inputs.usage_summed(
            organization_ids=[org.pk],
            start=APRIL,
            end=MAY,
            boundaries=[],
            hourly_clusters=[cluster.pk],
        )
    with CaptureQueriesContext(connection) as month_close:
        outcome = invoice_close(organization=org, period_start=APRIL, now=MAY + 2 * HOUR)

    assert len(rows) == 24
    assert len(summed[org.pk].rows) == 24
    assert outcome == Outcome.CLOSED
    assert partitions_in_plans(rows_read.captured_queries) == {"2026_04"}
    assert partitions_in_plans(summed_read.captured_queries) == {"2026_04"}
    assert partitions_in_plans(month_close.captured_queries) == {"2026_04"}


# Retention -----------------------------------------------------------------------------------


JANUARY, FEBRUARY = (datetime(2026, month, 1, tzinfo=UTC) for month in (1, 2))
ARCHIVED = ("billing_usagehour_archived_2026_01", "billing_usagehour_archived_2026_02")


@pytest.fixture
def months_of_2026():
    yield
    drop_tables(*ARCHIVED, "billing_usagehour_2026_03")


def archived_rows(name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {name}")  # noqa: S608 - the test's own names
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_retention_detaches_only_closed_months_whose_export_is_confirmed(
    org, months_of_2026, export_bucket, settings
):
    settings.SLUICE_LEDGER_RETENTION_MONTHS = 1
    ledger_partitions.partitions_ensure(now=JANUARY, ahead=2)
    cluster = cluster_since(org, JANUARY)
    for month in (JANUARY, FEBRUARY, MARCH):
        month_of_hours(cluster, month)
    # January closes with exports on: its export is written to S3. February closes while they
    # are off: no export. March is never closed.
    assert invoice_close(organization=org, period_start=JANUARY, now=FEBRUARY + 2 * HOUR) in (
        Outcome.CLOSED,
    )
    settings.SLUICE_EXPORT_BUCKET = ""
    assert invoice_close(organization=org, period_start=FEBRUARY, now=MARCH + 2 * HOUR) in (
        Outcome.CLOSED,
    )
    january_export = UsageExport.unscoped_all_tenants.get(period_start=JANUARY)
    assert january_export.state == ExportState.DONE, january_export.error
    assert not UsageExport.unscoped_all_tenants.filter(period_start=FEBRUARY).exists()
    june = datetime(2026, 6, 15, tzinfo=UTC)

    first = ledger_partitions.months_retire(now=june)

    assert first.archived == ["billing_usagehour_archived_2026_01"]
    assert set(first.kept) == {"2026-02", "2026-03"}
    assert {"billing_usagehour_2026_02", "billing_usagehour_2026_03"} <= attached()
    assert "billing_usagehour_2026_01" not in attached()
    # Detached, not dropped: January's hours are all in the archived table, out of the ledger.
    assert archived_rows("billing_usagehour_archived_2026_01") == 24
    assert not UsageHour.unscoped_all_tenants.filter(hour__lt=FEBRUARY).exists()

    # With exports on again, the retention run queues February's missing export, which is
    # written; the next run detaches February. March, never closed, stays.
    settings.SLUICE_EXPORT_BUCKET = export_bucket
    assert ledger_partitions.months_retire(now=june).archived == []
    february_export = UsageExport.unscoped_all_tenants.get(period_start=FEBRUARY)
    assert february_export.state == ExportState.DONE, february_export.error

    second = ledger_partitions.months_retire(now=june)

    assert second.archived == ["billing_usagehour_archived_2026_02"]
    assert second.kept == {"2026-03": "1 organization(s) have not closed the month"}
    assert archived_rows("billing_usagehour_archived_2026_02") == 24
    assert "billing_usagehour_2026_03" in attached()
    assert UsageHour.unscoped_all_tenants.count() == 24

    # A late hour of a detached month gets no second table of the month: it stays in the
    # default partition, shown on /metrics, for an operator.
    UsageHour.unscoped_all_tenants.create(
        organization=org,
        cluster=cluster,
        dimension=Dimension.PARTITION_HOURS,
        hour=JANUARY + 5 * HOUR,
        quantity=1,
        complete=True,
        computed_at=june,
    )
    assert ledger_partitions.partitions_ensure(now=MARCH, ahead=0) == []
    assert default_figure() == 1


@pytest.mark.django_db
def test_an_export_that_does_not_hold_every_hour_of_the_month_is_not_confirmed(org, settings):
    settings.SLUICE_LEDGER_RETENTION_MONTHS = 1
    ledger_partitions.partitions_ensure(now=JANUARY, ahead=0)
    cluster = cluster_since(org, JANUARY)
    month_of_hours(cluster, JANUARY)
    settings.SLUICE_EXPORT_BUCKET = ""
    assert invoice_close(organization=org, period_start=JANUARY, now=FEBRUARY + 2 * HOUR) in (
        Outcome.CLOSED,
    )
    # An export recorded done, but of fewer hours than the month holds now.
    UsageExport.unscoped_all_tenants.create(
        organization=org,
        period_start=JANUARY,
        trigger="request",
        state=ExportState.DONE,
        bucket="b",
        prefix="p/",
        files=[{"name": "usage-hours", "rows": 23}],
    )

    kept = ledger_partitions.months_retire(now=datetime(2026, 6, 1, tzinfo=UTC))

    assert kept.archived == []
    assert kept.kept == {"2026-01": "1 organization(s) have no confirmed export of the month"}
    assert "billing_usagehour_2026_01" in attached()


@pytest.mark.django_db
def test_no_retention_keeps_every_month(org, settings):
    settings.SLUICE_LEDGER_RETENTION_MONTHS = 0
    ledger_partitions.partitions_ensure(now=JANUARY, ahead=0)

    assert ledger_partitions.months_retire(now=datetime(2030, 1, 1, tzinfo=UTC)).archived == []
    assert "billing_usagehour_2026_01" in attached()
