"""The operators' view of the fleet: tiers and their prices, cells and their capacity,
clusters by state with failures to retry (and, with their topics, credentials and operations,
deleted only through the reconciler), quota overrides. The fleet dashboard is
``fleet_views``'."""

from django.contrib import admin, messages
from django.db import models
from django.template.response import TemplateResponse

from foundation.errors import Conflict
from tenants.audit import Actor
from tenants.scoping import tenant_scope

from . import cell_credentials
from .cell_forms import CellForm
from .fleet import with_capacity_in_use
from .models import (
    Cell,
    Cluster,
    ClusterState,
    Credential,
    Operation,
    OrganizationQuota,
    Tier,
    TierPrice,
    Topic,
)
from .operator_actions import operator_delete, operator_retry
from .services import quotas


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
    form = CellForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = [
        "slug",
        "cloud",
        "region",
        "accepting",
        "api_server",
        "shared_in_use",
        "dedicated_units_in_use",
    ]
    list_filter = ["cloud", "region", "accepting"]
    readonly_fields = ["credentials"]
    fieldsets = [
        (None, {"fields": ["slug", "cloud", "region", "accepting"]}),
        (
            "Kubernetes API",
            {
                "description": "Credentials are sealed and never shown back.",
                "fields": [
                    "credentials",
                    "kubeconfig",
                    "server",
                    "ca_certificate",
                    "token",
                    "clear_credentials",
                    "test_connection",
                ],
            },
        ),
        (
            "Shared Kafka",
            {
                "fields": [
                    "shared_kafka_namespace",
                    "shared_kafka_name",
                    "shared_bootstrap",
                    "shared_kafka_brokers",
                ]
            },
        ),
        (
            "Capacity and metering",
            {
                "fields": [
                    "max_shared_clusters",
                    "max_dedicated_units",
                    "max_shared_partitions",
                    "prometheus_url",
                ]
            },
        ),
    ]

    @admin.display(description="credentials")
    def credentials(self, cell: Cell) -> str:
        return cell_credentials.summary(cell)

    def get_queryset(self, request):
        return with_capacity_in_use(super().get_queryset(request))

    @admin.display(description="shared clusters")
    def shared_in_use(self, cell: Cell) -> str:
        return f"{cell.shared} / {cell.max_shared_clusters}"

    @admin.display(description="dedicated units")
    def dedicated_units_in_use(self, cell: Cell) -> str:
        return f"{cell.dedicated_units or 0} / {cell.max_dedicated_units}"


class ReadOnlyInline(admin.TabularInline):
    """A cluster's rows of one kind, to read: every tenant's (operators span them all), none
    added, changed or deleted here (they change through the tenants' services)."""

    extra = 0
    can_delete = False
    show_change_link = False

    def get_queryset(self, request):
        return self.model.unscoped_all_tenants.get_queryset()

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class TopicInline(ReadOnlyInline):
    model = Topic
    fields = ["name", "partitions", "replication_factor", "retention_ms", "cleanup_policy"]
    fields += ["configs", "created_at", "deleted_at"]


class CredentialInline(ReadOnlyInline):
    model = Credential
    # The sealed password is not shown: operators never need it.
    fields = ["public_id", "name", "username", "created_at", "rotated_at", "deleted_at"]


class OperationInline(ReadOnlyInline):
    model = Operation
    fields = ["public_id", "kind", "state", "target_generation", "error_code", "error_message"]
    fields += ["requested_by", "created_at", "finished_at"]
    ordering = ["-created_at"]


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
    inlines = [TopicInline, CredentialInline, OperationInline]
    actions = ["retry_failed", "delete_through_reconciler"]

    def get_queryset(self, request):
        return Cluster.unscoped_all_tenants.select_related("organization", "tier", "cell")

    def has_add_permission(self, request) -> bool:
        return False  # clusters are made by tenants, through placement and quotas

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # The inlines (topics, credentials, operations) are the tenant's rows: read in its
        # scope, as the organization's own page reads its members.
        cluster = self.get_queryset(request).filter(pk=object_id).first() if object_id else None
        if cluster is None:
            return super().changeform_view(request, object_id, form_url, extra_context)
        with tenant_scope(cluster.organization):
            response = super().changeform_view(request, object_id, form_url, extra_context)
            if hasattr(response, "render"):
                response.render()  # templates render lazily: do it while in scope
            return response

    def has_delete_permission(self, request, obj=None) -> bool:
        # Deleting the row would orphan everything the cluster holds in the data plane, and
        # its billing history: "Delete through the reconciler" is the way.
        return False

    @admin.action(description="Retry the selected failed clusters", permissions=["change"])
    def retry_failed(self, request, queryset) -> None:
        retried = 0
        for cluster in queryset.filter(state=ClusterState.FAILED):
            operator_retry(operator=request.user, cluster=cluster)
            retried += 1
        messages.info(request, f"Retrying {retried} cluster(s).")

    @admin.action(
        description="Delete the selected clusters through the reconciler", permissions=["change"]
    )
    def delete_through_reconciler(self, request, queryset):
        """Asks first (a page listing the clusters); on the answer, each cluster's deletion is
        requested as its owners would: the reconciler removes what it holds in the data plane
        before it is marked deleted."""
        clusters = list(queryset.filter(deleted_at__isnull=True).select_related("organization"))
        if request.POST.get("confirmed") != "yes":
            return TemplateResponse(
                request,
                "admin/clusters/cluster/delete_through_reconciler.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Delete clusters through the reconciler?",
                    "clusters": clusters,
                    "opts": self.model._meta,
                    "action": "delete_through_reconciler",
                    "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                },
            )
        requested = 0
        for cluster in clusters:
            try:
                operator_delete(operator=request.user, cluster=cluster)
            except Conflict as refusal:
                messages.error(request, f"{cluster.name} ({cluster.public_id}): {refusal}")
            else:
                requested += 1
        messages.info(request, f"Deletion requested for {requested} cluster(s).")
        return None


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
