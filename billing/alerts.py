"""Alerts to the platform's operators about money: an invoice closed over incomplete hours, a
push Stripe refused, an event that could not be applied. Each is a row the admin lists until
an operator resolves it, and an ERROR log line (``sluice.billing.alerts``) for whatever watches
the logs. Raising the same alert again while it is open changes nothing."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from tenants.models import Organization

from .models import BillingAlert

logger = logging.getLogger("sluice.billing.alerts")


def alert_raise(
    *, kind: str, subject: str, message: str, organization: Organization | None = None
) -> BillingAlert:
    """The open alert of ``kind`` about ``subject``: made (and logged) unless one is open."""
    found = BillingAlert.objects.filter(kind=kind, subject=subject, resolved_at=None).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():  # a savepoint: two raisers at once make one alert
            alert = BillingAlert.objects.create(
                kind=kind, subject=subject, message=message, organization=organization
            )
    except IntegrityError:
        return BillingAlert.objects.get(kind=kind, subject=subject, resolved_at=None)
    logger.error("billing alert %s about %s: %s", kind, subject, message)
    return alert


def alert_resolve(*, kind: str, subject: str) -> int:
    """Mark the open alert of ``kind`` about ``subject`` resolved (what it said was fixed)."""
    return BillingAlert.objects.filter(kind=kind, subject=subject, resolved_at=None).update(
        resolved_at=timezone.now()
    )
