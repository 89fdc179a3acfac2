"""Budget alerts on SQLite, as `make run` runs them (the other tests use PostgreSQL): the alert
rows inserted by raw SQL (ON CONFLICT DO NOTHING … RETURNING) must read back through Django's
lookups, so that a second check finds them and fires nothing. Run in a child process on a new
SQLite file."""

from tests.support.processes import run_on_sqlite

SCRIPT = """
import json, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from datetime import UTC, datetime, timedelta
from billing import budgets
from billing.models import BudgetAlert
from tenants.audit import Actor
from tenants.scoping import tenant_scope
from tests.billing.budget_support import organization_with_cluster, standings_at, write_ingress

NOV = datetime(2026, 11, 1, tzinfo=UTC)
late = NOV + timedelta(hours=708)
organization, cluster = organization_with_cluster("Acme")
with tenant_scope(organization):
    budgets.budget_set(organization=organization, actor=Actor(system="t"), monthly_micros=10**8)
write_ingress(cluster, NOV + timedelta(hours=10), 1250)
first = budgets.budgets_evaluate(standings_at(late, organization), now=late)
second = budgets.budgets_evaluate(standings_at(late, organization), now=late)
print(json.dumps({
    "fired": [first, second],
    "found": BudgetAlert.unscoped_all_tenants.filter(period_start=NOV).count(),
}))
"""


def test_alerts_fire_once_on_sqlite(tmp_path):
    answer = run_on_sqlite(SCRIPT, tmp_path)
    # $100 spent of $100: 50, 80 and 100%, and the forecast; all found again the second time.
    assert answer == {"fired": [4, 0], "found": 4}
