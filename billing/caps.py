"""Spend caps: a monthly limit on what an organization (or one of its clusters) spends, which
slows things down and never deletes anything.

- **Setting one**: the owner or billing role, in dollars (stored in micro-dollars), per
  organization and optionally per cluster; audited. Setting, raising or removing a cap is
  checked against the month so far at once: a cap raised above the spend lifts its hold.
- **The check**, after every metering run (``spend_watch``): a cap is *reached* when the month
  so far plus what the current run rate adds before the next check
  (``SLUICE_SPEND_PROJECTION_SECONDS``) is at or above it. Then a ``SpendHold`` is opened (one
  per cap and month, whatever the number of concurrent checks), and
- every cluster it covers that runs on a shared Kafka is **throttled**: its principals' produce
  and consume byte rates and controller mutations are lowered to the floors
  (``SLUICE_THROTTLE_*``) through the reconciler, and the cluster shows ``throttled`` and why;
- a **dedicated** cluster is not throttled (its cost is its capacity, which a lower rate does
  not change): its cap only refuses growth;
- **growth is refused** with ``spend_cap_reached``: creating clusters, topics, partitions and
  credentials, and reshaping to more capacity or another tier (a smaller size is allowed).
- **Nothing is deleted**. Storage, partition-hours and cluster-hours keep accruing, so the
  month can end above the cap: the cap bounds throughput, the part a tenant's traffic drives.
- **Lifting**: when the cap is raised above the month so far, removed, or the month ends, the
  hold is lifted and the clusters get their own quotas back through the same reconciler.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from clusters.guards import CLUSTER_CREATE, CLUSTER_RESHAPE, Creation
from clusters.models import Cluster
from clusters.services import clusters_throttle_set
from foundation.errors import InvalidInput, NotFound, SpendCapReached
from foundation.tasks import enqueue
from tenants.audit import Actor, audit_record
from tenants.models import Organization
from tenants.scoping import tenant_scope

from .models import SpendCap, SpendHold
from .money import dollars_exact
from .services import month_start
from .spend import ClusterSpend, Standing, standings

log = logging.getLogger(__name__)

# The largest cap accepted: $10 million a month (a typing error above that is more likely).
MAX_CAP_MICROS = 10_000_000 * 1_000_000
CAP_REASON = "cap_raised"
CAP_REMOVED = "cap_removed"
NEW_MONTH = "month_rolled_over"
APPLY_TASK = "billing.tasks.apply_spend_holds"


def _money(micros: int) -> str:
    return f"${dollars_exact(micros)}"


# Setting caps -------------------------------------------------------------------------------


def caps_of(*, organization: Organization) -> list[SpendCap]:
    """The organization's caps: its own first, then its clusters' (deleted ones left out)."""
    caps = SpendCap.objects.filter(organization=organization).select_related("cluster")
    ordered = caps.order_by(F("cluster_id").asc(nulls_first=True))
    return [cap for cap in ordered if _cap_is_live(cap)]


def _cap_is_live(cap: SpendCap) -> bool:
    return cap.cluster_id is None or cap.cluster.deleted_at is None


def cluster_to_cap(*, organization: Organization, cluster_public_id: str | None) -> Cluster | None:
    """The organization's live cluster of that id (``None`` for the organization's own cap);
    ``NotFound`` otherwise, naming nothing it was not given."""
    if cluster_public_id is None:
        return None
    cluster = Cluster.objects.filter(
        organization=organization, public_id=cluster_public_id, deleted_at__isnull=True
    ).first()
    if cluster is None:
        raise NotFound("No such cluster in this organization")
    return cluster


@transaction.atomic
def cap_set(
    *,
    organization: Organization,
    actor: Actor,
    monthly_micros: int,
    cluster_public_id: str | None = None,
    now: datetime | None = None,
) -> SpendCap:
    """Set (or change) the organization's cap, or a cluster's; checked against the month so far
    at once. Audited as ``spend_cap.set`` with the amounts before and after."""
    if not 0 <= monthly_micros <= MAX_CAP_MICROS:
        raise InvalidInput(
            f"A monthly cap is from $0.00 to {_money(MAX_CAP_MICROS)}", field="monthly_cap"
        )
    cluster = cluster_to_cap(organization=organization, cluster_public_id=cluster_public_id)
    cap = SpendCap.objects.select_for_update().filter(organization=organization, cluster=cluster)
    cap = cap.first()
    before = None if cap is None else {"monthly_cap": _money(cap.monthly_micros)}
    if cap is None:
        cap = SpendCap(organization=organization, cluster=cluster, monthly_micros=monthly_micros)
    cap.monthly_micros = monthly_micros
    cap.save()
    audit_record(
        organization=organization,
        actor=actor,
        action="spend_cap.set",
        target=cluster or organization,
        before=before,
        after={"monthly_cap": _money(monthly_micros)},
    )
    caps_enforce(standings([organization.pk], now=now), now=now)
    return cap


@transaction.atomic
def cap_remove(
    *,
    organization: Organization,
    actor: Actor,
    cluster_public_id: str | None = None,
    now: datetime | None = None,
) -> None:
    """Remove the organization's cap (or a cluster's); its hold, if any, is lifted."""
    cluster = cluster_to_cap(organization=organization, cluster_public_id=cluster_public_id)
    cap = SpendCap.objects.filter(organization=organization, cluster=cluster).first()
    if cap is None:
        raise NotFound("No such spend cap")
    audit_record(
        organization=organization,
        actor=actor,
        action="spend_cap.removed",
        target=cluster or organization,
        before={"monthly_cap": _money(cap.monthly_micros)},
    )
    cap.delete()
    caps_enforce(standings([organization.pk], now=now), now=now)


# The check ----------------------------------------------------------------------------------


def capped_organization_ids() -> list[int]:
    """Every organization with a cap, or a hold still open (to be lifted)."""
    capped = set(SpendCap.unscoped_all_tenants.values_list("organization_id", flat=True))
    holding = SpendHold.unscoped_all_tenants.filter(lifted_at__isnull=True)
    return sorted(capped | set(holding.values_list("organization_id", flat=True)))


def caps_enforce(
    found: Mapping[int, Standing], *, now: datetime | None = None, defer_throttles: bool = False
) -> int:
    """Compare each organization's standing with its caps: open the holds of caps reached,
    lift those no longer reached (raised, removed, a new month), and throttle exactly the
    clusters the open holds cover. Returns how many holds opened or lifted. Two checks at
    once open each hold once (a unique open hold per cap and month).

    ``defer_throttles`` (the fleet-wide check) leaves the throttling of an organization whose
    holds moved to a task of its own, queued once the holds are committed: a check's time
    does not grow with the number of caps reached at once, and the clusters follow within
    seconds. Without it (a cap saved by a tenant) they follow in the same transaction."""
    now = now or timezone.now()
    ids = list(found)
    caps: dict[int, list[CapLimit]] = {}
    rows = SpendCap.unscoped_all_tenants.filter(organization_id__in=ids).order_by("pk")
    for organization, cluster, micros in rows.values_list(
        "organization_id", "cluster_id", "monthly_micros"
    ):
        caps.setdefault(organization, []).append(CapLimit(cluster, micros))
    holds: dict[int, list[SpendHold]] = {}
    for hold in SpendHold.unscoped_all_tenants.filter(
        organization_id__in=ids, lifted_at__isnull=True
    ).order_by("pk"):
        holds.setdefault(hold.organization_id, []).append(hold)
    horizon = settings.SLUICE_SPEND_PROJECTION_SECONDS
    changed = 0
    for pk, standing in found.items():
        wanted = _reached(standing, caps.get(pk, []), horizon)
        current = {hold.cluster_id: hold for hold in holds.get(pk, [])}
        if not wanted and not current:
            continue
        with transaction.atomic():
            moved = _lift(current, wanted, caps.get(pk, []), standing, now)
            moved += _reach(pk, wanted, current, standing, now)
            if not defer_throttles:  # the holds and their throttles commit together
                holds_apply(pk, period_start=standing.period_start)
        if moved and defer_throttles:
            enqueue(APPLY_TASK, organization_id=pk, period_start=standing.period_start.isoformat())
        changed += moved
    return changed


class CapLimit(NamedTuple):
    """What the check needs of a SpendCap (read as plain values: thousands a run)."""

    cluster_id: int | None
    monthly_micros: int


def _reached(standing: Standing, caps: list[CapLimit], horizon: float) -> dict:
    """The caps reached: cluster primary key (``None``: the organization's) to (cap, spend)."""
    reached = {}
    for cap in caps:
        if cap.cluster_id is None:
            spend = standing.projected_micros(horizon)
        else:
            spend = standing.cluster_projected_micros(cap.cluster_id, horizon)
        if spend >= cap.monthly_micros:
            reached[cap.cluster_id] = (cap.monthly_micros, spend)
    return reached


def _lift(open_holds: dict, wanted: dict, caps: list[CapLimit], standing, now) -> int:
    lifted = 0
    present = {cap.cluster_id for cap in caps}
    for scope, hold in list(open_holds.items()):
        if hold.period_start == standing.period_start and scope in wanted:
            continue
        if hold.period_start != standing.period_start:
            reason = NEW_MONTH
        else:
            reason = CAP_REASON if scope in present else CAP_REMOVED
        updated = SpendHold.unscoped_all_tenants.filter(pk=hold.pk, lifted_at__isnull=True).update(
            lifted_at=now, lift_reason=reason
        )
        if updated:
            log.info("spend cap hold lifted", extra={"hold": hold.pk, "reason": reason})
        lifted += updated
        del open_holds[scope]
    return lifted


def _reach(pk: int, wanted: dict, open_holds: dict, standing: Standing, now) -> int:
    opened = 0
    for scope, (cap_micros, spend) in wanted.items():
        if scope in open_holds:
            continue
        try:
            with transaction.atomic():
                hold = SpendHold.unscoped_all_tenants.create(
                    organization_id=pk,
                    cluster_id=scope,
                    period_start=standing.period_start,
                    cap_micros=cap_micros,
                    spend_micros=spend,
                    reached_at=now,
                )
        except IntegrityError:  # a concurrent check opened it first
            continue
        open_holds[scope] = hold
        opened += 1
        organization = Organization.objects.get(pk=pk)
        with tenant_scope(organization):
            audit_record(
                organization=organization,
                actor=Actor(system="spend-control"),
                action="spend_cap.reached",
                target=hold.cluster if scope else organization,
                after={"monthly_cap": _money(cap_micros), "month_so_far": _money(spend)},
            )
        log.warning("spend cap reached", extra={"organization": pk, "cluster": scope})
    return opened


def holds_apply(pk: int, *, period_start: datetime) -> None:
    """Throttle exactly the organization's clusters its open holds of the month cover, and lift
    the throttle of the others (idempotent: what already agrees is left as it is)."""
    holds = list(
        SpendHold.unscoped_all_tenants.filter(
            organization_id=pk, lifted_at__isnull=True, period_start=period_start
        )
    )
    organization = Organization.objects.get(pk=pk)
    with tenant_scope(organization):
        live = Cluster.objects.filter(organization=organization, deleted_at__isnull=True)
        throttled: dict[int, str] = {}
        for hold in holds:
            reason = _reason(hold)
            covered = [hold.cluster_id] if hold.cluster_id else live.values_list("pk", flat=True)
            for cluster_pk in covered:
                throttled.setdefault(cluster_pk, reason)
        clusters_throttle_set(organization=organization, throttled=throttled)


def _reason(hold: SpendHold) -> str:
    scope = "this cluster's" if hold.cluster_id else "the organization's"
    return (
        f"Reached {scope} spend cap of {_money(hold.cap_micros)} a month on "
        f"{hold.reached_at:%Y-%m-%d %H:%M} UTC ({_money(hold.spend_micros)} with the current "
        "rate): produce and consume are slowed down until the cap is raised or the month ends"
    )


# Refusing growth ------------------------------------------------------------------------------


def open_holds(organization: Organization, *, now: datetime | None = None) -> list[SpendHold]:
    """The organization's holds open this month."""
    start = month_start((now or timezone.now()).astimezone(UTC))
    return list(
        # Asked by the creation guards, in or out of a tenant's scope: the organization is given.
        SpendHold.unscoped_all_tenants.filter(
            organization=organization, lifted_at__isnull=True, period_start=start
        ).select_related("cluster")
    )


def spend_cap_guard(creation: Creation) -> None:
    """Refuse growth under a reached cap (registered with the clusters app's creation guards)."""
    holds = open_holds(creation.organization)
    if not holds:
        return
    if creation.action == CLUSTER_RESHAPE and _shrinks(creation):
        return
    for hold in holds:
        if hold.cluster_id is None or (
            creation.action != CLUSTER_CREATE
            and creation.cluster is not None
            and hold.cluster_id == creation.cluster.pk
        ):
            scope = "this cluster's" if hold.cluster_id else "the organization's"
            raise SpendCapReached(
                f"This month's spending reached {scope} spend cap of "
                f"{_money(hold.cap_micros)}: nothing new can be created until the cap is "
                "raised (Billing tab) or the month ends. What exists keeps running",
                monthly_cap=_money(hold.cap_micros),
                month_so_far=_money(hold.spend_micros),
            )


def _shrinks(creation: Creation) -> bool:
    cluster = creation.cluster
    return (
        cluster is not None
        and creation.tier.pk == cluster.tier_id
        and creation.capacity_units <= cluster.capacity_units
    )


# Reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CapStatus:
    """One cap as its organization sees it: the cap, what the month so far is against it, and
    the hold when reached."""

    cap: SpendCap
    month_to_date_micros: int
    hold: SpendHold | None

    @property
    def cluster(self) -> Cluster | None:
        return self.cap.cluster


@dataclass(frozen=True)
class CapsOverview:
    period_start: datetime
    month_to_date_micros: int
    caps: list[CapStatus]


def caps_overview(*, organization: Organization, now: datetime | None = None) -> CapsOverview:
    """The organization's caps with this month's spend against each (rated now)."""
    standing = standings([organization.pk], now=now)[organization.pk]
    holds = {hold.cluster_id: hold for hold in open_holds(organization, now=now)}
    statuses = [
        CapStatus(
            cap=cap,
            month_to_date_micros=(
                standing.month_to_date_micros
                if cap.cluster_id is None
                else standing.clusters.get(cap.cluster_id, ClusterSpend()).month_to_date_micros
            ),
            hold=holds.get(cap.cluster_id),
        )
        for cap in caps_of(organization=organization)
    ]
    return CapsOverview(standing.period_start, standing.month_to_date_micros, statuses)
