"""How spend caps read on the web pages: each cap with this month so far against it, in dollars
with separators, and, when reached, the notice of what is slowed, what is refused, what still
accrues and how it lifts (as ``caps`` enforces it); and the summary on the Billing tab."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.urls import reverse

from clusters.models import Cluster
from clusters.services import throttleable
from clusters.tiers import throttle_floors
from foundation.text import counted
from tenants.models import Organization

from .caps import CapsOverview, CapStatus, caps_of, open_holds
from .presentation import usd
from .rating import MICROS_PER_CENT


def usd_of_micros(micros: int, *, exact: bool = False) -> str:
    """Micro-dollars as the pages write dollars, with separators: ``"$1,234.56"``, in whole
    cents, or ``exact`` with the digits past the cent a cap was typed with (``"$1.234"``)."""
    text = usd(micros // MICROS_PER_CENT)
    if exact and micros % MICROS_PER_CENT:
        text += f"{micros % MICROS_PER_CENT:04d}".rstrip("0")
    return text


def _rate(bytes_per_second: int) -> str:
    if bytes_per_second % 1024 == 0:
        return f"{bytes_per_second // 1024:,} KiB/s"
    return f"{bytes_per_second:,} bytes/s"


def _names(clusters: Iterable[Cluster]) -> str:
    names = [cluster.name for cluster in clusters]
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)


def _next_month(period_start: datetime) -> datetime:
    if period_start.month == 12:
        return period_start.replace(year=period_start.year + 1, month=1)
    return period_start.replace(month=period_start.month + 1)


def reached_notice(status: CapStatus, covered: list[Cluster], period_start: datetime) -> dict:
    """What a reached cap does, in the page's words: slowed, refused, still accruing, lifting."""
    floors = throttle_floors()
    shared = [cluster for cluster in covered if throttleable(cluster)]
    dedicated = [cluster for cluster in covered if not throttleable(cluster)]
    slowed = []
    if shared:
        slowed.append(
            f"Each credential of {_names(shared)} may produce "
            f"{_rate(floors.producer_bytes_per_second)} and consume "
            f"{_rate(floors.consumer_bytes_per_second)} (the throttle floors): clients keep "
            "working, slowly."
        )
    if dedicated:
        slowed.append(
            f"{_names(dedicated)} (Dedicated) {'is' if len(dedicated) == 1 else 'are'} not "
            "slowed: a Dedicated cluster costs its capacity, whatever its traffic."
        )
    if status.cluster is None:
        refused = (
            "Creating clusters, topics, partitions and credentials, and moving a cluster to a "
            "larger size or another tier, is refused until then."
        )
    else:
        refused = (
            "Creating topics, partitions and credentials on it, and moving it to a larger size "
            "or another tier, is refused until then."
        )
    spent = usd_of_micros(status.month_to_date_micros)
    return {
        "reached_at": status.hold.reached_at,
        "slowed": slowed,
        "refused": refused,
        "accrues": (
            "Storage, partition-hours and cluster-hours still accrue, so the month can end "
            f"above the cap: {spent} so far."
        ),
        "lifts": (
            f"It lifts when the cap is raised above the month so far ({spent}) or removed, "
            f"or when the month ends ({_next_month(period_start):%-d %B %Y}, 00:00 UTC)."
        ),
    }


def cap_row(status: CapStatus, clusters: list[Cluster], period_start: datetime) -> dict:
    """A cap as the caps page shows it; ``clusters`` are the organization's live clusters."""
    cap = status.cap
    covered = clusters if status.cluster is None else [status.cluster]
    row = {
        "status": status,
        "cap": usd_of_micros(cap.monthly_micros, exact=True),
        "month_to_date": usd_of_micros(status.month_to_date_micros),
        "share": (
            f"{min(status.month_to_date_micros * 100 // cap.monthly_micros, 999)}%"
            if cap.monthly_micros
            else ""
        ),
        "notice": (None if status.hold is None else reached_notice(status, covered, period_start)),
    }
    if status.cluster is not None:
        row["cluster_url"] = reverse(
            "clusters:detail",
            kwargs={"org": cap.organization.public_id, "cluster_id": status.cluster.public_id},
        )
    return row


def caps_page(overview: CapsOverview, clusters: list[Cluster]) -> dict:
    """The organization's cap and its clusters' caps as rows of the caps page."""
    rows = [cap_row(status, clusters, overview.period_start) for status in overview.caps]
    capped = {row["status"].cluster.pk for row in rows if row["status"].cluster is not None}
    return {
        "month": overview.period_start,
        "month_to_date": usd_of_micros(overview.month_to_date_micros),
        "organization_cap": next((row for row in rows if row["status"].cluster is None), None),
        "cluster_caps": [row for row in rows if row["status"].cluster is not None],
        "uncapped_clusters": [cluster for cluster in clusters if cluster.pk not in capped],
    }


def caps_summary(organization: Organization) -> dict:
    """The Billing tab's card: which caps there are, and a line for each one reached (read
    without rating the month, which the caps page does)."""
    found = caps_of(organization=organization)
    own = next((cap for cap in found if cap.cluster_id is None), None)
    clusters = len(found) - (own is not None)
    own_line = (
        "No organization cap"
        if own is None
        else f"The organization's cap is {usd_of_micros(own.monthly_micros, exact=True)} a month"
    )
    own_lines = (
        f"{counted(clusters, 'cluster')} with a cap of {'its' if clusters == 1 else 'their'} own"
        if clusters
        else "no cluster has a cap of its own"
    )
    summary = f"{own_line}; {own_lines}."
    reached = [
        f"The spend cap of {hold.cluster.name if hold.cluster else 'the organization'} "
        f"({usd_of_micros(hold.cap_micros, exact=True)}) is reached."
        for hold in open_holds(organization)
    ]
    return {"summary": summary, "reached": reached}
