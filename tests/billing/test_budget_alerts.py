"""Budget alerts fired from real standings (billing.spend over a ledger written by hand): each
threshold once, the forecast alert, a new month firing again, four concurrent checks firing
each alert once on PostgreSQL, the e-mail sent once per alert, the API's budget (amounts as
decimal dollar strings, refused with stable codes), who may set it, its audit trail, and one
organization never seeing another's.

E-mail goes through Django's locmem backend (the test settings'): Django's own test outbox, as
no mail server runs here."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.db import connection

from billing import budgets
from billing.budgets import budgeted_organization_ids, budgets_evaluate
from billing.models import Budget, BudgetAlert, BudgetAlertKind
from tenants.audit import Actor
from tenants.models import AuditEvent
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.billing.budget_support import organization_with_cluster, standings_at, write_ingress
from tests.factories import UserFactory, add_member
from tests.support.clients import session_client
from tests.support.feedback import refused_page

pytestmark = pytest.mark.django_db(transaction=True)

H = timedelta(hours=1)
OCTOBER = datetime(2026, 10, 1, tzinfo=UTC)
NOVEMBER = datetime(2026, 11, 1, tzinfo=UTC)
SYSTEM = Actor(system="tests")
HUNDRED_DOLLARS = 100_000_000


@pytest.fixture
def acme():
    organization, cluster = organization_with_cluster("Acme")
    with tenant_scope(organization):
        budgets.budget_set(organization=organization, actor=SYSTEM, monthly_micros=HUNDRED_DOLLARS)
    return organization, cluster


def fired(organization) -> list[tuple[str, str, int, int]]:
    return list(
        BudgetAlert.unscoped_all_tenants.filter(organization=organization)
        .order_by("period_start", "id")
        .values_list("period_start__month", "threshold", "month_to_date_micros", "forecast_micros")
    )


def test_each_threshold_fires_once_as_the_month_goes_on(acme):
    organization, cluster = acme
    # 700 GB at $0.08 = $56.000000 (56,000,000 micro-dollars): 56% of $100.
    write_ingress(cluster, NOVEMBER + 10 * H, 700)
    late = NOVEMBER + 708 * H  # 30 November, 12:00: 708 of the month's 720 hours gone
    assert budgeted_organization_ids() == [organization.pk]
    standings = standings_at(late, organization)
    assert standings[organization.pk].month_to_date_micros == 56_000_000
    # Forecast: 56,000,000 x 720 // 708 = 56,949,152: under the budget, no forecast alert.
    assert standings[organization.pk].forecast_micros == 56_949_152
    assert budgets_evaluate(standings, now=late) == 1
    assert budgets_evaluate(standings_at(late, organization), now=late) == 0  # not again
    # 300 GB more: $24.000000, the month at $80 = 80%.
    write_ingress(cluster, NOVEMBER + 11 * H, 300)
    assert budgets_evaluate(standings_at(late + H, organization), now=late + H) == 1
    # 250 GB more: $20, the month at $100 = 100%; and its forecast (100,000,000 x 720 // 709
    # = 101,551,480) passes the budget.
    write_ingress(cluster, NOVEMBER + 12 * H, 250)
    assert budgets_evaluate(standings_at(late + H, organization), now=late + H) == 2
    assert fired(organization) == [
        (11, "50", 56_000_000, 56_949_152),
        (11, "80", 80_000_000, 81_241_184),
        (11, "100", 100_000_000, 101_551_480),
        (11, "forecast", 100_000_000, 101_551_480),
    ]


def test_the_forecast_alert_fires_from_the_run_rate_before_the_budget_is_reached(acme):
    organization, cluster = acme
    write_ingress(cluster, NOVEMBER + 10 * H, 700)  # $56
    midmonth = NOVEMBER + 360 * H  # 16 November 00:00: half the month gone
    # Forecast: 56,000,000 x 720 // 360 = 112,000,000 > 100,000,000.
    assert budgets_evaluate(standings_at(midmonth, organization), now=midmonth) == 2
    alerts = BudgetAlert.unscoped_all_tenants.filter(organization=organization)
    assert {(a.threshold, a.kind, a.forecast_micros) for a in alerts} == {
        ("50", BudgetAlertKind.THRESHOLD, 112_000_000),
        ("forecast", BudgetAlertKind.FORECAST, 112_000_000),
    }


def test_a_budget_without_the_forecast_alert_and_custom_thresholds(acme):
    organization, cluster = acme
    with tenant_scope(organization):
        budgets.budget_set(
            organization=organization,
            actor=SYSTEM,
            monthly_micros=HUNDRED_DOLLARS,
            thresholds=[90, 25, 25],
            forecast_alert=False,
        )
    assert Budget.unscoped_all_tenants.get(organization=organization).thresholds == [25, 90]
    write_ingress(cluster, NOVEMBER + 10 * H, 700)  # $56: 25% reached, not 90%
    midmonth = NOVEMBER + 360 * H
    assert budgets_evaluate(standings_at(midmonth, organization), now=midmonth) == 1
    assert [row[1] for row in fired(organization)] == ["25"]


def test_the_next_month_fires_again(acme):
    organization, cluster = acme
    write_ingress(cluster, OCTOBER + 10 * H, 700)  # $56 in October
    end_of_october = NOVEMBER - H
    assert budgets_evaluate(standings_at(end_of_october, organization), now=end_of_october) == 1
    write_ingress(cluster, NOVEMBER + 3 * H, 650)  # $52 in November
    late = NOVEMBER + 700 * H
    assert budgets_evaluate(standings_at(late, organization), now=late) == 1
    assert [(row[0], row[1], row[2]) for row in fired(organization)] == [
        (10, "50", 56_000_000),
        (11, "50", 52_000_000),
    ]


def test_four_concurrent_checks_fire_each_threshold_once(acme):
    organization, cluster = acme
    write_ingress(cluster, NOVEMBER + 10 * H, 1250)  # $100: 50, 80 and 100% at once
    late = NOVEMBER + 708 * H
    standings = standings_at(late, organization)
    barrier, counts, errors = threading.Barrier(4), [], []

    def check():
        try:
            barrier.wait(timeout=10)
            counts.append(budgets_evaluate(standings, now=late))
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=check) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    # 100,000,000 x 720 // 708 = 101,694,915 > the budget: the forecast alert too.
    assert sum(counts) == 4
    assert sorted(row[1] for row in fired(organization)) == ["100", "50", "80", "forecast"]
    assert len(mail.outbox) == 4  # one e-mail per alert, whichever check fired it


def test_each_alert_is_mailed_once_to_the_billing_address_or_else_the_owners(acme):
    organization, cluster = acme
    write_ingress(cluster, NOVEMBER + 10 * H, 700)
    late = NOVEMBER + 708 * H
    budgets_evaluate(standings_at(late, organization), now=late)
    budgets_evaluate(standings_at(late, organization), now=late)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["owner@acme.example"]
    assert message.subject == "Acme: 50% of the monthly budget reached"
    assert "has spent $56.00 so far in November 2026" in message.body
    assert "monthly budget of $100.00" in message.body
    alert = BudgetAlert.unscoped_all_tenants.get()
    assert alert.emailed_at is not None
    assert alert.public_id in message.body
    # With a billing e-mail address, alerts go there.
    from billing.accounts import billing_account_update

    with tenant_scope(organization):
        billing_account_update(organization=organization, actor=SYSTEM, email="ap@acme.example")
    write_ingress(cluster, NOVEMBER + 11 * H, 300)
    budgets_evaluate(standings_at(late, organization), now=late)
    assert [m.to for m in mail.outbox] == [["owner@acme.example"], ["ap@acme.example"]]


def test_organizations_without_a_budget_are_not_checked(acme):
    other, cluster = organization_with_cluster("Other")
    write_ingress(cluster, NOVEMBER + 10 * H, 5000)
    late = NOVEMBER + 708 * H
    assert budgeted_organization_ids() == [acme[0].pk]
    assert budgets_evaluate(standings_at(late, other), now=late) == 0
    assert not BudgetAlert.unscoped_all_tenants.exists()


# The API ------------------------------------------------------------------------------------


def budget_url(organization) -> str:
    return f"/api/v1/orgs/{organization.public_id}/billing/budget/"


def test_the_owner_sets_reads_and_removes_the_budget_audited():
    organization, _ = organization_with_cluster("Acme")
    client = session_client(add_member(organization, Role.BILLING).user)
    assert client.get(budget_url(organization)).status_code == 404
    response = client.put(
        budget_url(organization),
        {"monthly_usd": "250.5", "thresholds": [80, 50]},
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["monthly_usd"], body["monthly_micros"]) == ("250.500000", 250_500_000)
    assert (body["thresholds"], body["forecast_alert"], body["alerts"]) == ([50, 80], True, [])
    assert client.get(budget_url(organization)).json()["monthly_usd"] == "250.500000"
    assert client.delete(budget_url(organization)).status_code == 204
    assert client.delete(budget_url(organization)).status_code == 404
    with tenant_scope(organization):
        events = list(AuditEvent.objects.order_by("id").values_list("action", "before", "after"))
    assert events[-2:] == [
        (
            "budget.set",
            None,
            {"monthly_usd": "250.500000", "thresholds": [50, 80], "forecast_alert": True},
        ),
        (
            "budget.deleted",
            {"monthly_usd": "250.500000", "thresholds": [50, 80], "forecast_alert": True},
            None,
        ),
    ]


@pytest.mark.parametrize(
    ("amount", "code", "reason"),
    [
        ("-5", "invalid_amount", "negative"),
        ("-0.01", "invalid_amount", "negative"),
        ("0", "invalid_amount", "zero"),
        ("0.000000", "invalid_amount", "zero"),
        ("1000000000.000001", "invalid_amount", "too_large"),
        ("99999999999999999999999", "invalid_amount", "too_large"),
        ("1.0000001", "invalid_amount", "too_many_decimals"),
        ("\u0661\u0660\u0660", "invalid_amount", "not_a_decimal"),  # Arabic-Indic 100
        ("\uff11\uff10\uff10", "invalid_amount", "not_a_decimal"),  # full-width 100
        ("1e3", "invalid_amount", "not_a_decimal"),
        (" 100", "invalid_amount", "not_a_decimal"),
        ("+100", "invalid_amount", "not_a_decimal"),
        ("1,000", "invalid_amount", "not_a_decimal"),
        ("NaN", "invalid_amount", "not_a_decimal"),
        ("", "invalid_amount", "not_a_decimal"),
        (100, "validation", None),  # a JSON number, not a string
    ],
)
def test_an_amount_that_is_not_a_positive_dollar_string_is_refused(amount, code, reason):
    organization, _ = organization_with_cluster("Acme")
    client = session_client(add_member(organization, Role.OWNER).user)
    response = client.put(budget_url(organization), {"monthly_usd": amount}, format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == code
    if reason:
        assert (problem["reason"], problem["field"]) == (reason, "monthly_usd")
    assert not Budget.unscoped_all_tenants.exists()


@pytest.mark.parametrize("thresholds", [[], [0], [501], [True], list(range(1, 12)), "50"])
def test_thresholds_out_of_bounds_are_refused(thresholds):
    organization, _ = organization_with_cluster("Acme")
    client = session_client(add_member(organization, Role.OWNER).user)
    response = client.put(
        budget_url(organization), {"monthly_usd": "10", "thresholds": thresholds}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "validation"


@pytest.mark.parametrize(
    ("role", "read", "write"),
    [
        (Role.OWNER, 200, 200),
        (Role.BILLING, 200, 200),
        (Role.ADMIN, 200, 403),
        (Role.DEVELOPER, 403, 403),
        (Role.VIEWER, 403, 403),
    ],
)
def test_owners_and_billing_members_set_the_budget_admins_read_it(role, read, write):
    organization, _ = organization_with_cluster("Acme")
    with tenant_scope(organization):
        budgets.budget_set(organization=organization, actor=SYSTEM, monthly_micros=10_000_000)
    client = session_client(add_member(organization, role).user)
    assert client.get(budget_url(organization)).status_code == read
    response = client.put(budget_url(organization), {"monthly_usd": "20"}, format="json")
    assert response.status_code == write


def test_one_organization_never_sees_anothers_budget_or_alerts(acme):
    organization, cluster = acme
    write_ingress(cluster, NOVEMBER + 10 * H, 700)
    late = NOVEMBER + 708 * H
    budgets_evaluate(standings_at(late, organization), now=late)
    other, _ = organization_with_cluster("Other")
    outsider = session_client(add_member(other, Role.OWNER).user)
    assert outsider.get(budget_url(organization)).status_code == 404
    assert (
        outsider.put(budget_url(organization), {"monthly_usd": "1"}, format="json").status_code
        == 404
    )
    assert outsider.get(budget_url(other)).status_code == 404  # its own: none set
    assert Budget.unscoped_all_tenants.get().monthly_micros == HUNDRED_DOLLARS


def test_the_budget_page_sets_the_budget_and_lists_this_months_alerts():
    organization, _ = organization_with_cluster("Acme")
    owner = UserFactory()
    add_member(organization, Role.OWNER, owner)
    client = session_client(owner)
    page = f"/orgs/{organization.public_id}/billing/alerts/"
    assert client.get(page).status_code == 200
    refused = client.post(page, {"action": "budget", "monthly_usd": "-3", "thresholds": "50"})
    assert "The amount cannot be negative" in refused_page(client, refused, page, "budget")
    saved = client.post(
        page,
        {
            "action": "budget",
            "monthly_usd": "1234.5",
            "thresholds": "50, 90",
            "forecast_alert": "on",
        },
    )
    assert saved.status_code == 302
    budget = Budget.unscoped_all_tenants.get()
    assert (budget.monthly_micros, budget.thresholds) == (1_234_500_000, [50, 90])
    assert "The budget is $1,234.50 a month" in client.get(page).content.decode()
    billing_tab = client.get(f"/orgs/{organization.public_id}/billing/").content.decode()
    assert page in billing_tab
