"""How a fired budget alert is told: the webhook's JSON body (posted by ``webhook_outbox``) and
the e-mail, sent by a task through Django's configured mail backend to the billing account's
e-mail address, or to the organization's owners when it has none. The e-mail goes once: the
alert's ``emailed_at`` is claimed before sending (and given back when sending fails, for the
task's retry)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.utils import timezone

from tenants.models import Membership
from tenants.roles import Role

from .invoices import dollars
from .models import BillingAccount, BudgetAlert, BudgetAlertKind
from .presentation import usd as usd_cents
from .rating import MICROS_PER_CENT


def _usd(micros: int) -> str:
    return dollars(micros, places=6)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _period_end(start: datetime) -> datetime:
    return (start + timedelta(days=32)).replace(day=1)


def threshold_percent(alert: BudgetAlert) -> int | None:
    return int(alert.threshold) if alert.kind == BudgetAlertKind.THRESHOLD else None


def webhook_body(alert: BudgetAlert) -> str:
    """The JSON the endpoint receives (compact, keys sorted; amounts as decimal US dollar
    strings, to the micro-dollar, as the API writes them)."""
    organization = alert.organization
    document = {
        "id": alert.public_id,
        "type": alert.kind,
        "created": _rfc3339(alert.fired_at),
        "organization": {"id": organization.public_id, "name": organization.name},
        "period": {
            "start": _rfc3339(alert.period_start),
            "end": _rfc3339(_period_end(alert.period_start)),
        },
        "threshold_percent": threshold_percent(alert),
        "currency": "USD",
        "budget_usd": _usd(alert.budget_micros),
        "month_to_date_usd": _usd(alert.month_to_date_micros),
        "forecast_usd": _usd(alert.forecast_micros),
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True)


def recipients(organization) -> list[str]:
    """The billing account's e-mail address, or else the owners'."""
    account = BillingAccount.objects.filter(organization=organization).first()
    if account is not None and account.email:
        return [account.email]
    return sorted(
        Membership.objects.filter(organization=organization, role=Role.OWNER).values_list(
            "user__email", flat=True
        )
    )


def alert_send_email(*, alert: BudgetAlert) -> bool:
    """Mail the alert unless it was mailed already; whether this call mailed it."""
    claimed = BudgetAlert.objects.filter(pk=alert.pk, emailed_at__isnull=True).update(
        emailed_at=timezone.now()
    )
    to = recipients(alert.organization)
    if not claimed or not to:
        return False
    percent = threshold_percent(alert)
    name = alert.organization.name
    subject = (
        f"{name}: {percent}% of the monthly budget reached"
        if percent is not None
        else f"{name}: this month's forecast is over the budget"
    )
    context = {
        "organization": alert.organization,
        "threshold_percent": percent,
        "period_start": alert.period_start,
        "budget": usd_cents(alert.budget_micros // MICROS_PER_CENT),
        "month_to_date": usd_cents(alert.month_to_date_micros // MICROS_PER_CENT),
        "forecast": usd_cents(alert.forecast_micros // MICROS_PER_CENT),
        "event_id": alert.public_id,
    }
    try:
        send_mail(
            subject=subject,
            message=render_to_string("billing/email/budget_alert.txt", context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=to,
        )
    except Exception:
        BudgetAlert.objects.filter(pk=alert.pk).update(emailed_at=None)
        raise
    return True
