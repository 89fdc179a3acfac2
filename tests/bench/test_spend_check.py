"""Benchmark of the spend check (billing.spend_watch), which runs after every metering run for
every organization with a spend cap or a budget: 10,000 organizations
(``SLUICE_BENCH_SPEND_ORGANIZATIONS``), one Serverless cluster each, every one capped, with a
week of month-to-date ledger (ingress, egress, storage and partition-hours: 6.7 M rows,
written straight into PostgreSQL, not counted).

- **cold**: the first check of the month, which reads every organization's month so far and
  settles it into its tally (the baseline: what every check would cost without the tally);
- **warm**: the check after the next metering run (one more hour recorded, the watermark one
  hour on): it settles that hour into the tallies and reads the open hour. Target: under 5 s,
  with a constant number of queries per organization (counted; batches of ``spend.BATCH_SIZE``).

Half a percent of the caps are reached at the warm check: their holds open within the check,
and one task per organization throttles its clusters (queued by the check; timed apart, run in
turn here). The warm
check's month so far is checked against the month rated one organization at a time the way
the draft invoice is (``costs.month_to_date_micros``) for a sample.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing import costs, spend
from billing.caps import holds_apply
from billing.models import MeteringCursor, SpendCap, SpendHold
from billing.spend_watch import spend_check
from clusters.models import Cluster, ClusterSize, ClusterState, Tier
from tenants.models import Organization
from tenants.scoping import tenant_scope
from tests.bench.ledger import ledger_months_made
from tests.factories import make_cell

pytestmark = pytest.mark.bench

ORGANIZATIONS = int(os.environ.get("SLUICE_BENCH_SPEND_ORGANIZATIONS", "10000"))
OCTOBER = datetime(2026, 10, 1, tzinfo=UTC)
WEEK = OCTOBER + timedelta(days=7)
TARGET_SECONDS = 5.0
REACHED_EVERY = 200  # one organization in 200 reaches its cap at the warm check

LEDGER_SQL = """
INSERT INTO billing_usagehour
    (organization_id, cluster_id, dimension, hour, quantity, complete, computed_at)
SELECT c.organization_id, c.cluster_id, d.dimension, h.hour,
       CASE d.dimension
           WHEN 'partition_hours' THEN 6 + (c.cluster_id %% 5)
           ELSE (c.cluster_id %% 97 + 1) * 10000019 + extract(hour FROM h.hour)::bigint * 7919
       END,
       true, %s
FROM unnest(%s::bigint[], %s::bigint[]) AS c(organization_id, cluster_id)
CROSS JOIN unnest(%s::text[]) AS d(dimension)
CROSS JOIN generate_series(%s::timestamptz, %s::timestamptz - interval '1 hour',
                           interval '1 hour') AS h(hour)
"""
DIMENSIONS = ["ingress_bytes", "egress_bytes", "storage_byte_hours", "partition_hours"]


def _write_hours(clusters: list[Cluster], start: datetime, end: datetime) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            LEDGER_SQL,
            [
                end,
                [c.organization_id for c in clusters],
                [c.pk for c in clusters],
                DIMENSIONS,
                start,
                end,
            ],
        )
        return cursor.rowcount


def _build() -> tuple[list[Organization], list[Cluster], int, float]:
    ledger_months_made(OCTOBER)
    cell = make_cell()
    serverless = Tier.objects.get(slug="serverless")
    organizations = Organization.objects.bulk_create(
        Organization(public_id=f"org_spendbench{n:06}", name=f"Spend bench {n}")
        for n in range(ORGANIZATIONS)
    )
    clusters = Cluster.unscoped_all_tenants.bulk_create(
        Cluster(
            public_id=f"kc_spendbench{n:06}",
            organization=organization,
            name=f"c-{n:05}",
            tier=serverless,
            cell=cell,
            state=ClusterState.READY,
            observed_generation=1,
        )
        for n, organization in enumerate(organizations)
    )
    ClusterSize.unscoped_all_tenants.bulk_create(
        (
            ClusterSize(
                organization_id=c.organization_id,
                cluster=c,
                tier=serverless,
                capacity_units=1,
                since=OCTOBER - timedelta(days=60),
            )
            for c in clusters
        ),
        batch_size=5000,
    )
    SpendCap.unscoped_all_tenants.bulk_create(
        (SpendCap(organization=o, monthly_micros=10**12) for o in organizations), batch_size=5000
    )
    started = time.monotonic()
    rows = _write_hours(clusters, OCTOBER, WEEK + timedelta(hours=1))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE billing_usagehour")
    return organizations, clusters, rows, time.monotonic() - started


def _metered_until(moment: datetime) -> None:
    MeteringCursor.objects.update_or_create(
        cell=Cluster.unscoped_all_tenants.first().cell, defaults={"watermark": moment}
    )


@pytest.mark.timeout(1800)
@pytest.mark.django_db(transaction=True)
def test_spend_check(bench_report, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False  # the throttles' reconciles are queued, not run
    organizations, clusters, rows, generate_seconds = _build()

    # Cold: the week so far read and settled for every organization.
    _metered_until(WEEK)
    started = time.monotonic()
    with CaptureQueriesContext(connection) as cold_queries:
        cold = spend_check(now=WEEK + timedelta(minutes=30))
    cold_seconds = time.monotonic() - started
    assert (cold.organizations, cold.holds_changed) == (ORGANIZATIONS, 0)

    # The next metering run: one more hour; some caps now below the month so far.
    rows += _write_hours(clusters, WEEK + timedelta(hours=1), WEEK + timedelta(hours=2))
    reached = [o.pk for n, o in enumerate(organizations) if n % REACHED_EVERY == 0]
    SpendCap.unscoped_all_tenants.filter(organization_id__in=reached).update(monthly_micros=1)
    _metered_until(WEEK + timedelta(hours=1))
    now = WEEK + timedelta(hours=1, minutes=30)
    started = time.monotonic()
    with CaptureQueriesContext(connection) as warm_queries:
        warm = spend_check(now=now)
    warm_seconds = time.monotonic() - started

    assert warm.holds_changed == len(reached)
    assert SpendHold.unscoped_all_tenants.filter(lifted_at__isnull=True).count() == len(reached)
    # What the queued apply_spend_holds tasks do, one per organization whose cap was reached
    # (run here in turn; workers run them side by side).
    started = time.monotonic()
    for pk in reached:
        holds_apply(pk, period_start=OCTOBER)
    apply_seconds = time.monotonic() - started
    assert Cluster.unscoped_all_tenants.filter(throttled_since__isnull=False).count() == len(
        reached
    )
    found = spend.standings([o.pk for o in organizations[:: ORGANIZATIONS // 20]], now=now)
    for organization in organizations[:: ORGANIZATIONS // 20]:
        with tenant_scope(organization):
            draft = costs.month_to_date_micros(organization=organization, now=now)
        assert found[organization.pk].month_to_date_micros == draft
    # Queries in a warm check that throttles nothing: constant per batch.
    quiet_started = time.monotonic()
    with CaptureQueriesContext(connection) as quiet_queries:
        spend_check(now=now + timedelta(seconds=60))
    quiet_seconds = time.monotonic() - quiet_started
    batches = -(-ORGANIZATIONS // spend.BATCH_SIZE)

    bench_report.record(
        "spend_check",
        {
            "organizations": ORGANIZATIONS,
            "ledger_rows": rows,
            "generate_seconds_not_counted": round(generate_seconds, 1),
            "baseline_cold_check_seconds": round(cold_seconds, 2),
            "warm_check_seconds": round(warm_seconds, 2),
            "caps_reached_at_warm": len(reached),
            "throttle_tasks_seconds_in_turn": round(apply_seconds, 2),
            "ratio_warm_to_cold": round(warm_seconds / cold_seconds, 3),
            "quiet_check_seconds": round(quiet_seconds, 2),
            "queries_cold": len(cold_queries),
            "queries_warm": len(warm_queries),
            "queries_quiet": len(quiet_queries),
            "batches": batches,
            "queries_per_organization_quiet": round(len(quiet_queries) / ORGANIZATIONS, 4),
            "target_seconds": TARGET_SECONDS,
            "met": warm_seconds < TARGET_SECONDS and quiet_seconds < TARGET_SECONDS,
        },
    )
