"""Benchmark of the month close (billing.closing): a month of ledger for 10,000 clusters
(``SLUICE_BENCH_CLOSE_CLUSTERS``), closed as the beat job closes it (``month_close``, a batch of
organizations per transaction and ledger query), against one bare pass
over the same ledger rows measured in the same run.

The ledger is October 2026, 744 hours, written straight into PostgreSQL by one
``INSERT … SELECT`` (not counted): 1,000 organizations of 10 clusters; 80% Serverless (ingress,
egress, storage, partition-hours), 15% Standard (and cluster-hours), 5% Dedicated (ingress,
egress, storage, partition-hours and capacity-unit-hours); the Serverless ingress price changes
on the 16th (every such cluster's ingress is two lines); 1% of the clusters change tier on the
20th (read hour by hour). The baseline reads every row's (cluster, dimension, hour, quantity)
once through a server-side cursor and does nothing with it: the least any close that looked at
every hour in Python could cost. Memory: the process' peak resident set before and after the
close (the generation and the baseline run in PostgreSQL or stream, so they do not raise it).
"""

from __future__ import annotations

import os
import resource
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction

from billing.closing import Outcome, month_close, organizations_to_close
from billing.models import ClosedMonth, Invoice, InvoiceLine
from clusters.models import Cluster, ClusterSize, ClusterState, Tier, TierPrice
from tenants.models import Organization
from tests.bench.ledger import ledger_months_made
from tests.factories import make_cell

pytestmark = pytest.mark.bench

CLUSTERS = int(os.environ.get("SLUICE_BENCH_CLOSE_CLUSTERS", "10000"))
PER_ORGANIZATION = 10
OCTOBER, NOVEMBER = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
PRICE_CHANGE = datetime(2026, 10, 16, tzinfo=UTC)
TIER_CHANGE = datetime(2026, 10, 20, 14, 15, tzinfo=UTC)
CLOSE_AT = NOVEMBER + timedelta(hours=2)
TARGET_SECONDS = 60.0
GB = 10**9

# Dimensions per tier, as metering writes them.
BYTES_AND_PARTITIONS = ("ingress_bytes", "egress_bytes", "storage_byte_hours", "partition_hours")
DIMENSIONS = {
    "serverless": BYTES_AND_PARTITIONS,
    "standard": (*BYTES_AND_PARTITIONS, "cluster_hours"),
    "dedicated": (*BYTES_AND_PARTITIONS, "capacity_unit_hours"),
}

# One statement: every cluster's dimensions x every hour of October; quantities vary by hour.
LEDGER_SQL = """
INSERT INTO billing_usagehour
    (organization_id, cluster_id, dimension, hour, quantity, complete, computed_at)
SELECT c.organization_id, c.cluster_id, d.dimension, h.hour,
       CASE d.dimension
           WHEN 'cluster_hours' THEN 1
           WHEN 'capacity_unit_hours' THEN 4
           WHEN 'partition_hours' THEN 6 + (c.cluster_id %% 5)
           ELSE (c.cluster_id %% 97 + 1) * 10000019 + extract(hour FROM h.hour)::bigint * 7919
       END,
       true, %s
FROM unnest(%s::bigint[], %s::bigint[], %s::text[]) AS c(organization_id, cluster_id, tier)
JOIN unnest(%s::text[], %s::text[]) AS d(tier, dimension) ON d.tier = c.tier
CROSS JOIN generate_series(%s::timestamptz, %s::timestamptz - interval '1 hour',
                           interval '1 hour') AS h(hour)
"""


def _tier_of(index: int) -> str:
    slot = index % 20
    return "dedicated" if slot == 0 else "standard" if slot <= 3 else "serverless"


def _build_ledger() -> dict:
    ledger_months_made(OCTOBER)
    cell = make_cell()
    tiers = {tier.slug: tier for tier in Tier.objects.all()}
    organizations = Organization.objects.bulk_create(
        Organization(public_id=f"org_closebench{n:06}", name=f"Close bench {n}")
        for n in range(CLUSTERS // PER_ORGANIZATION)
    )
    clusters = Cluster.unscoped_all_tenants.bulk_create(
        Cluster(
            public_id=f"kc_closebench{n:06}",
            organization=organizations[n // PER_ORGANIZATION],
            name=f"c-{n:05}",
            tier=tiers[_tier_of(n)],
            capacity_units=2 if _tier_of(n) == "dedicated" else 1,
            cell=cell,
            state=ClusterState.READY,
            observed_generation=1,
        )
        for n in range(CLUSTERS)
    )
    Cluster.unscoped_all_tenants.filter(pk__in=[c.pk for c in clusters]).update(
        created_at=OCTOBER - timedelta(days=60)
    )
    sizes = [
        ClusterSize(
            organization_id=c.organization_id,
            cluster=c,
            tier=c.tier,
            capacity_units=c.capacity_units,
            since=OCTOBER - timedelta(days=60),
        )
        for c in clusters
    ]
    # 1% move from Serverless to Standard on the 20th: priced hour by hour around the change.
    moving = [c for n, c in enumerate(clusters) if _tier_of(n) == "serverless" and n % 100 == 7]
    sizes += [
        ClusterSize(
            organization_id=c.organization_id,
            cluster=c,
            tier=tiers["standard"],
            capacity_units=1,
            since=TIER_CHANGE,
        )
        for c in moving
    ]
    ClusterSize.unscoped_all_tenants.bulk_create(sizes, batch_size=5000)
    TierPrice.objects.create(
        tier=tiers["serverless"],
        dimension="ingress_bytes",
        micros=60_000,
        per_units=GB,
        effective_from=PRICE_CHANGE,
    )
    pairs = [(tier, dimension) for tier, names in DIMENSIONS.items() for dimension in names]
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(
            LEDGER_SQL,
            [
                CLOSE_AT,
                [c.organization_id for c in clusters],
                [c.pk for c in clusters],
                [_tier_of(n) for n in range(CLUSTERS)],
                [tier for tier, _ in pairs],
                [dimension for _, dimension in pairs],
                OCTOBER,
                NOVEMBER,
            ],
        )
        rows = cursor.rowcount
        cursor.execute("ANALYZE billing_usagehour")
    return {
        "organizations": organizations,
        "rows": rows,
        "moving": len(moving),
        "generate_seconds": time.monotonic() - started,
    }


def _bare_pass() -> tuple[int, float]:
    """Every row of the month read once, as a close reading hours in Python would have to."""
    started = time.monotonic()
    count = 0
    with connection.connection.cursor(name="bare_pass") as cursor:
        cursor.itersize = 10_000
        cursor.execute(
            "SELECT cluster_id, dimension, hour, quantity FROM billing_usagehour"
            " WHERE hour >= %s AND hour < %s ORDER BY organization_id, hour",
            [OCTOBER, NOVEMBER],
        )
        for _row in cursor:
            count += 1
    return count, time.monotonic() - started


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.timeout(2700)  # generating 30 M ledger rows takes ~10 minutes on 2 cores
@pytest.mark.django_db(transaction=True)
def test_month_close(bench_report):
    ledger = _build_ledger()
    with transaction.atomic():  # a named (server-side) cursor lives in a transaction
        baseline_rows, baseline_seconds = _bare_pass()
    assert baseline_rows == ledger["rows"]

    rss_before = _peak_rss_mb()
    started = time.monotonic()
    closed = month_close(
        period_start=OCTOBER, organization_ids=organizations_to_close(OCTOBER), now=CLOSE_AT
    )
    outcomes = Counter(closed.values())
    close_seconds = time.monotonic() - started
    rss_after = _peak_rss_mb()

    invoices = Invoice.unscoped_all_tenants.filter(period_start=OCTOBER, state="open")
    assert outcomes == {Outcome.CLOSED: len(ledger["organizations"])}
    assert invoices.count() == len(ledger["organizations"])
    assert ClosedMonth.unscoped_all_tenants.filter(period_start=OCTOBER).count() == len(
        ledger["organizations"]
    )
    lines = InvoiceLine.unscoped_all_tenants.count()
    bench_report.record(
        "month_close",
        {
            "clusters": CLUSTERS,
            "organizations": len(ledger["organizations"]),
            "ledger_rows": ledger["rows"],
            "tier_changes": ledger["moving"],
            "lines": lines,
            "generate_seconds_not_counted": round(ledger["generate_seconds"], 1),
            "baseline_bare_pass_seconds": round(baseline_seconds, 1),
            "close_seconds": round(close_seconds, 1),
            "ratio_to_bare_pass": round(close_seconds / baseline_seconds, 2),
            "peak_rss_mb_before_close": round(rss_before, 1),
            "peak_rss_mb_after_close": round(rss_after, 1),
            "target_seconds": TARGET_SECONDS,
            "met": close_seconds < TARGET_SECONDS,
        },
    )
