"""Closing checks: what apps above this layer require before an organization may be closed,
asked by ``services.organization_close`` without naming them (the clusters app's is one: no
cluster may be left, registered from its ``AppConfig.ready``).

The service calls ``check_closing`` inside its transaction, holding the organization's row
locked: a check that refuses raises a ``foundation.errors.DomainError``, which rolls the close
back and reaches the caller as a problem (API) or a message (web UI). A check only says yes or
no; it changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction

from foundation.errors import DomainError

from .models import Organization

ClosingCheck = Callable[[Organization], None]

# Each check, and the name of the organization page where what it asks for is done (taking the
# organization's public id), for the page that explains closing.
_checks: dict[ClosingCheck, str | None] = {}


@dataclass(frozen=True)
class Refusal:
    detail: str
    url_name: str | None


def register_closing_check(check: ClosingCheck, *, url_name: str | None = None) -> ClosingCheck:
    """Add ``check`` (once: registering it again changes nothing), with ``url_name``, the page
    where what it asks for is done; returns it."""
    _checks.setdefault(check, url_name)
    return check


def unregister_closing_check(check: ClosingCheck) -> None:
    _checks.pop(check, None)


def check_closing(organization: Organization) -> None:
    """Ask every check, in the order they were registered; the first refusal raises."""
    for check in list(_checks):
        check(organization)


def closing_refusals(organization: Organization) -> list[Refusal]:
    """What every check would refuse now, for a page to show before the owner asks. Run in a
    savepoint rolled back at once, so whatever a check locks is let go."""
    refusals = []
    with transaction.atomic():
        for check, url_name in list(_checks.items()):
            try:
                check(organization)
            except DomainError as refusal:
                refusals.append(Refusal(refusal.detail, url_name))
        transaction.set_rollback(True)
    return refusals
