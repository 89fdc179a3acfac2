"""The operators' view of the fleet: tiers and their prices, cells and their capacity,
clusters by state with failures to retry, quota overrides."""

from django.contrib import admin, messages
from django.db.models import Count, Q, Sum

from tenants.audit import Actor
from tenants.scoping import tenant_scope

from . import services
from .models import (
    Cell,
    Cluster,
    ClusterState,
    Operation,
    OrganizationQuota,
    Tier,
    TierPrice,
)
from .services import quotas
from .specs import Kind


class TierPriceInline(admin.TabularInline):
    model = TierPrice
    extra = 1
    fields = ["dimension", "micros", "per_units", "effective_from"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a price changes by a new version with a later effective date


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "kind",
        "offered",
        "sla_percent",
        "ingress_mbps",
        "max_partitions",
    ]
    list_editable = ["offered"]
    inlines = [TierPriceInline]


@admin.register(Cell)
class CellAdmin(admin.ModelAdmin):
    list_display = [
        "slug",
        "cloud",
        "region",
        "accepting",
        "shared_in_use",
        "dedicated_units_in_use",
    ]
    list_filter = ["cloud", "region", "accepting"]

    def get_queryset(self, request):
        alive = Q(clusters__deleted_at__isnull=True)
        dedicated = Q(clusters__tier__kind=Kind.DEDICATED)
        return (
            super()
            .get_queryset(request)
            .annotate(
                shared=Count("clusters", filter=alive & ~dedicated),
                dedicated_units=Sum("clusters__capacity_units", filter=alive & dedicated),
            )
        )

    @admin.display(description="shared clusters")
    def shared_in_use(self, cell: Cell) -> str:
        return f"{cell.shared} / {cell.max_shared_clusters}"

    @admin.display(description="dedicated units")
    def dedicated_units_in_use(self, cell: Cell) -> str:
        return f"{cell.dedicated_units or 0} / {cell.max_dedicated_units}"


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "public_id",
        "organization",
        "tier",
        "cell",
        "state",
        "failure_reason",
        "updated_at",
    ]
    list_filter = ["state", "tier", "cell"]
    search_fields = ["name", "public_id", "organization__name", "organization__public_id"]
    readonly_fields = [f.name for f in Cluster._meta.fields]
    actions = ["retry_failed"]

    def get_queryset(self, request):
        return Cluster.unscoped_all_tenants.select_related("organization", "tier", "cell")

    def has_add_permission(self, request) -> bool:
        return False  # clusters are made by tenants, through placement and quotas

    @admin.action(description="Retry the selected failed clusters")
    def retry_failed(self, request, queryset) -> None:
        retried = 0
        for cluster in queryset.filter(state=ClusterState.FAILED):
            with tenant_scope(cluster.organization):
                services.cluster_retry(cluster=cluster, actor=Actor(user=request.user))
            retried += 1
        messages.info(request, f"Retrying {retried} cluster(s).")


@admin.register(Operation)
class OperationAdmin(admin.ModelAdmin):
    list_display = [
        "public_id",
        "kind",
        "cluster",
        "state",
        "error_code",
        "created_at",
        "finished_at",
    ]
    list_filter = ["state", "kind"]
    search_fields = ["public_id", "cluster__public_id", "cluster__name"]
    readonly_fields = [f.name for f in Operation._meta.fields]

    def get_queryset(self, request):
        return Operation.unscoped_all_tenants.select_related("cluster")

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(OrganizationQuota)
class OrganizationQuotaAdmin(admin.ModelAdmin):
    list_display = ["organization", "max_clusters", "max_partitions", "max_credentials"]
    search_fields = ["organization__name", "organization__public_id"]
    autocomplete_fields = ["organization"]

    # An operator's change of a quota reaches the organization's audit trail.
    def save_model(self, request, obj, form, change) -> None:
        quotas.quota_save(quota=obj, actor=Actor(user=request.user))

    def delete_model(self, request, obj) -> None:
        quotas.quota_reset(quota=obj, actor=Actor(user=request.user))

    def delete_queryset(self, request, queryset) -> None:
        for quota in queryset:
            self.delete_model(request, quota)
