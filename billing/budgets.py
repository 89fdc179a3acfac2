"""Budget alerts: an organization's monthly budget (set by the owner and billing roles,
audited), and the check that fires its alerts after every metering run.

An alert fires when the month's spend so far (``Standing.month_to_date_micros``) reaches a
threshold's percentage of the budget (50, 80 and 100 by default), and, when the budget asks for
it, when the month's forecast (``Standing.forecast_micros``) passes the budget. Each fires at
most once per organization, month and threshold: its ``BudgetAlert`` row is inserted with
``ON CONFLICT DO NOTHING`` against a unique constraint, and only the check whose insert made
the row sends it, however many checks run at once. A new month starts the thresholds again.

A fired alert is sent by e-mail (``budget_notices``, a task) and, when the organization has a
webhook endpoint, by the webhook outbox (``webhook_outbox``), both queued in the transaction
that fires it.

Amounts arrive as decimal US dollar strings (``"250.00"``), as the API shows money, and are
kept in micro-dollars: ``micros_from_dollars`` is the one parser, for the API and the form.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from foundation.errors import InvalidInput
from foundation.tasks import enqueue_on_commit
from tenants.audit import Actor, audit_record
from tenants.models import Organization

from .budget_notices import webhook_body
from .invoices import dollars
from .models import (
    FORECAST,
    Budget,
    BudgetAlert,
    BudgetAlertKind,
    WebhookDelivery,
    WebhookEndpoint,
)
from .models.budgets import DEFAULT_THRESHOLDS, new_budget_event_id
from .spend import Standing

EMAIL_TASK = "billing.tasks.send_budget_alert_email"
DELIVER_TASK = "billing.tasks.deliver_webhooks"

MICROS_PER_DOLLAR = 1_000_000
# A billion dollars a month: more is a typing error, not a budget.
MAX_BUDGET_MICROS = 10**9 * MICROS_PER_DOLLAR
MAX_THRESHOLDS = 10
INSERT_BATCH = 100  # alerts per INSERT: 900 parameters, within every database's limit
THRESHOLD_RANGE = (1, 500)  # percent of the budget
_ALERT_ONCE = "ON CONFLICT (organization_id, period_start, threshold) DO NOTHING RETURNING id"
_DOLLARS = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?", re.ASCII)


class InvalidAmount(InvalidInput):
    """An amount of money that is not a positive decimal string of US dollars within bounds;
    ``reason`` says which rule it breaks."""

    code = "invalid_amount"
    title = "The amount is not valid"


def micros_from_dollars(text, *, field: str) -> int:
    """``"250.5"`` as 250,500,000 micro-dollars. ASCII digits, a point, at most six decimals
    (a micro-dollar), more than 0 and at most a billion dollars; ``InvalidAmount`` with a
    ``reason`` (``not_a_string``, ``not_a_decimal``, ``negative``, ``too_many_decimals``,
    ``zero``, ``too_large``) otherwise."""

    def refuse(reason: str, detail: str) -> InvalidAmount:
        return InvalidAmount(detail, field=field, reason=reason)

    if not isinstance(text, str):
        raise refuse("not_a_string", 'Write the amount as a string of US dollars, e.g. "250.00"')
    match = _DOLLARS.fullmatch(text)
    if match is None:
        raise refuse("not_a_decimal", 'Not a decimal amount of US dollars, e.g. "250.00"')
    sign, whole, fraction = match.group(1), match.group(2), match.group(3) or ""
    if sign:
        raise refuse("negative", "The amount cannot be negative")
    if len(fraction) > 6:
        raise refuse("too_many_decimals", "At most six decimal places (a micro-dollar)")
    maximum = f"At most {dollars(MAX_BUDGET_MICROS // MICROS_PER_DOLLAR, places=0)} dollars"
    if len(whole.lstrip("0")) > 10:
        raise refuse("too_large", maximum)
    micros = int(whole) * MICROS_PER_DOLLAR + int(fraction.ljust(6, "0"))
    if micros == 0:
        raise refuse("zero", "The amount must be more than 0")
    if micros > MAX_BUDGET_MICROS:
        raise refuse("too_large", maximum)
    return micros


def usd(micros: int) -> str:
    """Micro-dollars as the API writes dollars: ``"250.000000"``."""
    return dollars(micros, places=6)


# Setting the budget ---------------------------------------------------------------------------


def budget_of(*, organization: Organization) -> Budget | None:
    return Budget.objects.filter(organization=organization).first()


def clean_thresholds(values) -> list[int]:
    """Distinct whole percentages of the budget, ascending, within ``THRESHOLD_RANGE``."""
    low, high = THRESHOLD_RANGE
    if not isinstance(values, list | tuple) or not 1 <= len(values) <= MAX_THRESHOLDS:
        raise InvalidInput(f"A list of 1 to {MAX_THRESHOLDS} percentages", field="thresholds")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidInput(
                f"Each threshold is a whole percentage from {low} to {high}", field="thresholds"
            )
    return sorted(set(values))


def _audited(budget: Budget) -> dict:
    return {
        "monthly_usd": usd(budget.monthly_micros),
        "thresholds": list(budget.thresholds),
        "forecast_alert": budget.forecast_alert,
    }


@transaction.atomic
def budget_set(
    *,
    organization: Organization,
    actor: Actor,
    monthly_micros: int,
    thresholds: Sequence[int] | None = None,
    forecast_alert: bool = True,
) -> Budget:
    """Set the organization's monthly budget (thresholds by default 50, 80 and 100 percent).
    Alerts already fired this month stay fired; a threshold newly reached fires at the next
    check. Audited with the values before and after."""
    if isinstance(monthly_micros, bool) or not isinstance(monthly_micros, int):
        raise InvalidAmount(
            "An amount in micro-dollars", field="monthly_usd", reason="not_a_decimal"
        )
    if not 0 < monthly_micros <= MAX_BUDGET_MICROS:
        reason = "too_large" if monthly_micros > 0 else "negative" if monthly_micros else "zero"
        raise InvalidAmount("Out of bounds", field="monthly_usd", reason=reason)
    thresholds = clean_thresholds(list(DEFAULT_THRESHOLDS) if thresholds is None else thresholds)
    budget = Budget.objects.select_for_update().filter(organization=organization).first()
    before = _audited(budget) if budget else None
    budget = budget or Budget(organization=organization)
    budget.monthly_micros = monthly_micros
    budget.thresholds = thresholds
    budget.forecast_alert = bool(forecast_alert)
    after = _audited(budget)
    if after != before:
        budget.save()
        audit_record(
            organization=organization,
            actor=actor,
            action="budget.set" if before is None else "budget.updated",
            target=budget,
            before=before,
            after=after,
        )
    return budget


@transaction.atomic
def budget_delete(*, organization: Organization, actor: Actor) -> bool:
    budget = Budget.objects.select_for_update().filter(organization=organization).first()
    if budget is None:
        return False
    audit_record(
        organization=organization,
        actor=actor,
        action="budget.deleted",
        target=budget,
        before=_audited(budget),
    )
    budget.delete()
    return True


def alerts_of(*, organization: Organization, period_start: datetime) -> list[BudgetAlert]:
    return list(
        BudgetAlert.objects.filter(organization=organization, period_start=period_start).order_by(
            "fired_at", "id"
        )
    )


# Firing ---------------------------------------------------------------------------------------


def budgeted_organization_ids() -> list[int]:
    """Every organization with a budget: the ones ``budgets_evaluate`` wants standings of."""
    return list(
        Budget.unscoped_all_tenants.order_by("organization_id").values_list(
            "organization_id", flat=True
        )
    )


def budgets_evaluate(standings: Mapping[int, Standing], *, now: datetime) -> int:
    """Fire the alerts the standings reach (fleet-wide); how many fired in this call. Safe to
    run many at once: each alert fires in exactly one of them. A constant number of queries,
    whatever the number of organizations."""
    budgets = Budget.unscoped_all_tenants.in_bulk(list(standings), field_name="organization_id")
    reached = [
        (standing, budget, threshold, kind)
        for pk, standing in standings.items()
        if (budget := budgets.get(pk)) is not None
        for threshold, kind in _reached(standing, budget)
    ]
    if not reached:
        return 0
    known = set(
        BudgetAlert.unscoped_all_tenants.filter(
            organization_id__in={standing.organization_id for standing, *_ in reached},
            period_start__in={standing.period_start for standing, *_ in reached},
        ).values_list("organization_id", "period_start", "threshold")
    )
    # In one order for every check, so two inserting the same rows wait for each other rather
    # than deadlock.
    new = sorted(
        (row for row in reached if _key(row) not in known),
        key=_key,
    )
    if not new:
        return 0
    with transaction.atomic():
        fired = [
            pk
            for first in range(0, len(new), INSERT_BATCH)
            for pk in _insert_once(new[first : first + INSERT_BATCH], now)
        ]
        if fired:
            _send(fired)
    return len(fired)


def _key(row) -> tuple[int, datetime, str]:
    standing, _budget, threshold, _kind = row
    return (standing.organization_id, standing.period_start, threshold)


def _reached(standing: Standing, budget: Budget) -> list[tuple[str, str]]:
    spent = standing.month_to_date_micros
    found = [
        (str(percent), BudgetAlertKind.THRESHOLD)
        for percent in budget.thresholds
        if spent * 100 >= budget.monthly_micros * percent
    ]
    if budget.forecast_alert and standing.forecast_micros > budget.monthly_micros:
        found.append((FORECAST, BudgetAlertKind.FORECAST))
    return found


def _insert_once(rows, now: datetime) -> list[int]:
    """Insert the alerts; the ids of those this call inserted (not those already there, or
    being inserted by another check: the unique constraint decides, and waits for it)."""
    fields = BudgetAlert._meta
    columns = [
        "public_id",
        "organization_id",
        "period_start",
        "threshold",
        "kind",
        "budget_micros",
        "month_to_date_micros",
        "forecast_micros",
        "fired_at",
    ]
    moment = fields.get_field("fired_at").get_db_prep_value(now, connection)
    values: list = []
    for standing, budget, threshold, kind in rows:
        period = fields.get_field("period_start").get_db_prep_value(
            standing.period_start, connection
        )
        values += [
            new_budget_event_id(),
            standing.organization_id,
            period,
            threshold,
            kind,
            budget.monthly_micros,
            standing.month_to_date_micros,
            standing.forecast_micros,
            moment,
        ]
    quote = connection.ops.quote_name
    one_row = "(" + ", ".join(["%s"] * len(columns)) + ")"
    table, names = quote(fields.db_table), ", ".join(map(quote, columns))
    many = ", ".join([one_row] * len(rows))
    sql = f"INSERT INTO {table} ({names}) VALUES {many} {_ALERT_ONCE}"  # noqa: S608 - names only
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        return [row[0] for row in cursor.fetchall()]


def _send(fired: list[int]) -> None:
    """Queue each fired alert's e-mail, and its webhook where the organization has one."""
    alerts = list(
        BudgetAlert.unscoped_all_tenants.filter(pk__in=fired).select_related("organization")
    )
    endpoints = set(
        WebhookEndpoint.unscoped_all_tenants.filter(
            organization_id__in={alert.organization_id for alert in alerts}
        ).values_list("organization_id", flat=True)
    )
    now = timezone.now()
    WebhookDelivery.unscoped_all_tenants.bulk_create(
        WebhookDelivery(
            organization_id=alert.organization_id,
            alert=alert,
            event_type=alert.kind,
            body=webhook_body(alert),
            next_attempt_at=now,
        )
        for alert in alerts
        if alert.organization_id in endpoints
    )
    for alert in alerts:
        enqueue_on_commit(
            EMAIL_TASK, organization=alert.organization.public_id, alert=alert.public_id
        )
    if any(alert.organization_id in endpoints for alert in alerts):
        enqueue_on_commit(DELIVER_TASK)
