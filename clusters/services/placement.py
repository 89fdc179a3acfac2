"""Placement: which cell of a region takes a cluster, by the room its live clusters leave."""

from __future__ import annotations

from django.db.models import Count, Q, Sum

from foundation.errors import DomainError

from ..models import Cell, Cluster, Tier
from ..specs import Kind


class CapacityUnavailable(DomainError):
    code = "capacity_unavailable"
    title = "No cell in this region has room for the cluster"
    status = 503


def place(
    *,
    tier: Tier,
    capacity_units: int,
    region: str,
    lock: bool = True,
    placing: Cluster | None = None,
) -> Cell:
    """The accepting cell of the region with the most room for this kind of cluster. With
    ``lock``, the region's cells stay locked until the transaction ends, so two placements
    cannot both take the last place; ``placing`` is a cluster already written with a tentative
    cell, not counted as using room."""
    cells = Cell.objects.filter(accepting=True, region=region).order_by("slug")
    cells = list(cells.select_for_update() if lock else cells)
    if not cells:  # a region of the catalog where no cell accepts clusters now
        raise CapacityUnavailable(
            f"No cell in {region} accepts new clusters; GET /api/v1/catalog/ lists the regions "
            "that do",
            region=region,
        )
    usage = cell_usage(cells, excluding=placing)

    def room(cell: Cell) -> int:
        shared, dedicated_units = usage[cell.pk]
        if tier.kind == Kind.DEDICATED:
            return cell.max_dedicated_units - dedicated_units - capacity_units
        return cell.max_shared_clusters - shared - 1

    best = max(cells, key=room)
    if room(best) < 0:
        raise CapacityUnavailable(
            f"Every cell in {region} is full for {tier.name} clusters; try another region or "
            "fewer capacity units",
            region=region,
        )
    return best


def first_choice(*, tier: Tier, capacity_units: int, region: str) -> Cell:
    """A tentative cell for a cluster about to be written, unlocked: an unknown region, or one
    where no cell accepts clusters, is refused before any write. A region's only cell is taken
    as it is, without counting its clusters: whether it has room is for ``place`` to say, under
    the lock, before the transaction commits. Among several, the one with the most room now."""
    cells = list(Cell.objects.filter(accepting=True, region=region).order_by("slug")[:2])
    if len(cells) == 1:
        return cells[0]
    return place(tier=tier, capacity_units=capacity_units, region=region, lock=False)


def cell_usage(
    cells: list[Cell], *, excluding: Cluster | None = None
) -> dict[int, tuple[int, int]]:
    """Per cell: live shared (serverless, standard) clusters, and capacity units of dedicated
    ones. One grouped count over the live clusters of these cells (a partial index)."""
    dedicated = Q(tier__kind=Kind.DEDICATED)
    live = Cluster.unscoped_all_tenants.filter(cell__in=cells, deleted_at__isnull=True)
    if excluding is not None:
        live = live.exclude(pk=excluding.pk)
    rows = (
        live.order_by()
        .values("cell_id")
        .annotate(
            shared=Count("pk", filter=~dedicated), units=Sum("capacity_units", filter=dedicated)
        )
    )
    usage = {cell.pk: (0, 0) for cell in cells}
    usage.update({row["cell_id"]: (row["shared"], row["units"] or 0) for row in rows})
    return usage


def ensure_cell_room(cluster: Cluster, tier: Tier, units: int) -> None:
    """The cluster's own cell (locked) has room for it to grow to ``units`` of ``tier``."""
    cell = Cell.objects.select_for_update().get(pk=cluster.cell_id)
    _shared, used = cell_usage([cell], excluding=cluster)[cell.pk]
    if used + units > cell.max_dedicated_units:
        raise CapacityUnavailable(
            f"The cluster's cell has room for {cell.max_dedicated_units - used} more capacity "
            f"units, not {units}",
            region=cell.region,
        )
