"""What the operators' fleet dashboard reads of the clusters layer: clusters by state, the stuck
and the failed ones, each cell's capacity in use, the reconcile lag and the recent failed
operations. Fleet-wide on purpose: these reads span every tenant (the unscoped managers).

The apps above contribute their own sections (billing's top organizations, the control plane's
Celery) and per-cell facts (billing's metering lag) through the registries below, from their
``AppConfig.ready``, so the dashboard names none of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, F, Min, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from .models import Cell, Cluster, ClusterState, Operation, OperationState, Topic
from .specs import Kind

# The states a cluster passes through on its way to converging: one that stays in them too
# long is stuck.
WORKING_STATES = (ClusterState.REQUESTED, ClusterState.PROVISIONING, ClusterState.UPDATING)
OPEN_OPERATIONS = (OperationState.PENDING, OperationState.RUNNING)
RECENT_ERRORS = 20


# Registries --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FleetSection:
    """A section of the dashboard: ``context()`` is what its template finds as ``section``."""

    key: str
    title: str
    template: str
    context: Callable[[], dict]
    position: int


@dataclass(frozen=True)
class CellFact:
    """A column of the cells' table: ``values(cells)`` maps each cell's primary key to what it
    shows, and to whether that is a problem (``(text, alarming)``)."""

    key: str
    title: str
    values: Callable[[list[Cell]], dict[int, tuple[str, bool]]]
    position: int


_sections: dict[str, FleetSection] = {}
_cell_facts: dict[str, CellFact] = {}


def register_fleet_section(section: FleetSection) -> None:
    """Add a section (again: a second registration of the same key replaces the first)."""
    _sections[section.key] = section


def register_cell_fact(fact: CellFact) -> None:
    _cell_facts[fact.key] = fact


def fleet_sections() -> list[FleetSection]:
    return sorted(_sections.values(), key=lambda section: (section.position, section.key))


def cell_facts() -> list[CellFact]:
    return sorted(_cell_facts.values(), key=lambda fact: (fact.position, fact.key))


# Clusters -----------------------------------------------------------------------------------


def stuck_after() -> timedelta:
    return timedelta(seconds=settings.SLUICE_FLEET_STUCK_AFTER_SECONDS)


def _live_clusters():
    return Cluster.unscoped_all_tenants.filter(deleted_at__isnull=True)


def clusters_by_state() -> list[tuple[str, str, int]]:
    """Every state with how many clusters not deleted are in it (zeros included), in the
    lifecycle's order."""
    counts = dict(
        _live_clusters()
        .values_list("state")
        .annotate(count=Count("pk"))
        .values_list("state", "count")
    )
    return [
        (state, label, counts.get(state, 0))
        for state, label in ClusterState.choices
        if state != ClusterState.DELETED
    ]


def _with_waiting_since(queryset):
    """Each cluster's ``waiting_since``: when the oldest change it has not converged to was
    asked for (its oldest open operation), else its last write."""
    oldest_open = (
        Operation.unscoped_all_tenants.filter(cluster=OuterRef("pk"), state__in=OPEN_OPERATIONS)
        .order_by("created_at")
        .values("created_at")[:1]
    )
    return queryset.annotate(
        waiting_since=Coalesce(Subquery(oldest_open), F("updated_at"))
    ).select_related("organization", "tier", "cell")


def stuck_clusters(*, now: datetime | None = None) -> list[Cluster]:
    """Clusters in a working state (requested, provisioning, updating) whose oldest pending
    change is older than ``SLUICE_FLEET_STUCK_AFTER_SECONDS``, longest waiting first."""
    limit = (now or timezone.now()) - stuck_after()
    return list(
        _with_waiting_since(_live_clusters().filter(state__in=WORKING_STATES))
        .filter(waiting_since__lt=limit)
        .order_by("waiting_since", "pk")
    )


def failed_clusters() -> list[Cluster]:
    """Failed clusters with their reasons, most recently failed first."""
    return list(
        _live_clusters()
        .filter(state=ClusterState.FAILED)
        .select_related("organization", "tier", "cell")
        .order_by("-updated_at")
    )


@dataclass(frozen=True)
class ReconcileLag:
    """Clusters whose desired generation the data plane has not been seen to reach, and since
    when the oldest such change waits."""

    unconverged: int
    oldest_since: datetime | None

    def age(self, now: datetime | None = None) -> timedelta | None:
        if self.oldest_since is None:
            return None
        return (now or timezone.now()) - self.oldest_since


def reconcile_lag() -> ReconcileLag:
    unconverged = _live_clusters().filter(generation__gt=F("observed_generation"))
    oldest = Operation.unscoped_all_tenants.filter(
        state__in=OPEN_OPERATIONS,
        cluster__deleted_at__isnull=True,
        target_generation__gt=F("cluster__observed_generation"),
    ).aggregate(oldest=Min("created_at"))["oldest"]
    return ReconcileLag(unconverged=unconverged.count(), oldest_since=oldest)


def recent_failed_operations(*, limit: int = RECENT_ERRORS) -> list[Operation]:
    return list(
        Operation.unscoped_all_tenants.filter(state=OperationState.FAILED)
        .select_related("cluster", "organization")
        .order_by("-finished_at", "-pk")[:limit]
    )


# Cells --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """An amount in use against its limit."""

    used: int
    limit: int

    @property
    def high(self) -> int:
        """Where a bar turns to a warning: 80 % of the limit."""
        return self.limit * 8 // 10

    @property
    def alarming(self) -> bool:
        return self.used >= self.high

    def __str__(self) -> str:
        return f"{self.used:,} / {self.limit:,}"


@dataclass(frozen=True)
class CellCapacity:
    cell: Cell
    shared_clusters: Usage
    dedicated_units: Usage
    partitions: Usage

    @property
    def bars(self) -> tuple[Usage, Usage, Usage]:
        return (self.shared_clusters, self.dedicated_units, self.partitions)


def with_capacity_in_use(cells):
    """The cells annotated with ``shared`` (their live clusters on the shared Kafka) and
    ``dedicated_units`` (the capacity units of their live dedicated clusters, or None)."""
    alive = Q(clusters__deleted_at__isnull=True)
    dedicated = Q(clusters__tier__kind=Kind.DEDICATED)
    return cells.annotate(
        shared=Count("clusters", filter=alive & ~dedicated),
        dedicated_units=Sum("clusters__capacity_units", filter=alive & dedicated),
    )


def cell_capacity() -> list[CellCapacity]:
    """Each cell's shared clusters, dedicated capacity units and the partitions of the topics
    on its shared Kafka, against the cell's limits (a dedicated cluster's partitions live on
    its own brokers, bounded by its tier, not the cell's)."""
    cells = list(with_capacity_in_use(Cell.objects.order_by("slug")))
    partitions = dict(
        Topic.unscoped_all_tenants.filter(deleted_at__isnull=True, cluster__deleted_at__isnull=True)
        .exclude(cluster__tier__kind=Kind.DEDICATED)
        .values_list("cluster__cell_id")
        .annotate(total=Sum("partitions"))
        .values_list("cluster__cell_id", "total")
    )
    return [
        CellCapacity(
            cell=cell,
            shared_clusters=Usage(cell.shared, cell.max_shared_clusters),
            dedicated_units=Usage(cell.dedicated_units or 0, cell.max_dedicated_units),
            partitions=Usage(partitions.get(cell.pk, 0), cell.max_shared_partitions),
        )
        for cell in cells
    ]
