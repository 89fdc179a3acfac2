"""The spend check after every metering run: the standing of every organization with a spend
cap (or a hold to lift) or a budget, compared with its caps and its budget's thresholds, in
batches of ``spend.BATCH_SIZE`` organizations (a constant number of queries per batch)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from clusters.models import Cluster

from .budgets import budgeted_organization_ids, budgets_evaluate
from .caps import capped_organization_ids, caps_enforce
from .spend import BATCH_SIZE, standings


@dataclass(frozen=True)
class CheckResult:
    organizations: int
    holds_changed: int
    alerts_fired: int


def organizations_to_check(*, cell_id: int | None = None) -> list[int]:
    """The organizations whose spend is watched, only those with a cluster on ``cell_id`` when
    given (the cell a metering run just recorded)."""
    ids = sorted(set(capped_organization_ids()) | set(budgeted_organization_ids()))
    if cell_id is None or not ids:
        return ids
    on_cell = Cluster.unscoped_all_tenants.filter(cell_id=cell_id, organization_id__in=ids)
    return sorted(set(on_cell.values_list("organization_id", flat=True)))


def spend_check(
    *, organization_ids: Collection[int] | None = None, now: datetime | None = None
) -> CheckResult:
    now = now or timezone.now()
    ids = sorted(organization_ids if organization_ids is not None else organizations_to_check())
    changed = fired = 0
    for first in range(0, len(ids), BATCH_SIZE):
        found = standings(ids[first : first + BATCH_SIZE], now=now)
        changed += caps_enforce(found, now=now, defer_throttles=True)
        fired += budgets_evaluate(found, now=now)
    return CheckResult(organizations=len(ids), holds_changed=changed, alerts_fired=fired)
