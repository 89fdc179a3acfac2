"""The month close on SQLite, as `make run` runs it (the other billing tests use PostgreSQL):
the ledger written by raw SQL must read back through Django's lookups (a datetime stored in
another text form than Django's is a row its filters never find), and a month closes, bills
and takes an adjustment there too. Run in a child process on a new SQLite file."""

from tests.support.processes import run_on_sqlite

SCRIPT = """
import json, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from datetime import UTC, datetime, timedelta
from billing import closing
from billing.models import Invoice, UsageAdjustment, UsageHour
from billing.services import HourSnapshot, record_hours
from clusters.models import Cluster, ClusterSize
from tests.factories import UserFactory, make_cluster, make_org

OCT = datetime(2026, 10, 1, tzinfo=UTC)
organization = make_org(owner=UserFactory())
cluster, _ = make_cluster(organization, name="events")
ClusterSize.unscoped_all_tenants.update(since=OCT)
Cluster.unscoped_all_tenants.update(created_at=OCT)
hours = [
    HourSnapshot(cluster.pk, "partition_hours", OCT + timedelta(hours=h), 3, True)
    for h in range(744)
]
record_hours(hours, now=OCT + timedelta(days=31, hours=1))
record_hours(hours[:5], now=OCT + timedelta(days=31, hours=1))
found = UsageHour.unscoped_all_tenants.filter(hour=OCT).count()
closed = closing.month_close(
    period_start=OCT, organization_ids=[organization.pk], now=OCT + timedelta(days=31, hours=2)
)
invoice = Invoice.unscoped_all_tenants.get()
later = OCT + timedelta(days=32)
record_hours([HourSnapshot(cluster.pk, "partition_hours", OCT, 5, True)], now=later)
print(json.dumps({
    "rows": UsageHour.unscoped_all_tenants.count(),
    "found_by_hour": found,
    "outcome": str(closed[organization.pk]),
    "invoice": [invoice.state, invoice.total_micros, invoice.total_cents],
    "adjustments": list(UsageAdjustment.unscoped_all_tenants.values_list("quantity", flat=True)),
}))
"""


def test_a_month_closes_on_sqlite(tmp_path):
    answer = run_on_sqlite(SCRIPT, tmp_path)
    # 3 partitions x 744 h = 2,232 partition-hours at $0.0015 = 3,348,000 micro-dollars, 335
    # cents (334.8, half to even); then the first hour is found to have had 5, not 3: +2.
    assert answer == {
        "rows": 744,
        "found_by_hour": 1,
        "outcome": "closed",
        "invoice": ["open", 3_348_000, 335],
        "adjustments": [2],
    }
