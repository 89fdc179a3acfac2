"""The operators' view of the usage ledger: every tenant's hours and adjustments, read-only.

The ledger is written only by metering (``services.record_hours``): an hour edited by hand
would be billed without a trace, so the admin shows it and changes nothing."""

from datetime import timedelta

from django.contrib import admin
from django.utils import timezone

from foundation.admin import ReadOnlyAdminMixin
from tenants.admin import AllTenantsMixin

from . import metering
from .models import MeteringCursor, UsageAdjustment, UsageHour
from .tasks import collect_cell_usage


class FinalListFilter(admin.SimpleListFilter):
    title = "final (invoiced)"
    parameter_name = "final"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(final_at__isnull=self.value() == "no")
        return queryset


class ReadOnlyLedgerAdmin(ReadOnlyAdminMixin, AllTenantsMixin, admin.ModelAdmin):
    date_hierarchy = "hour"
    list_select_related = ["cluster", "organization"]
    # Exact ids: the ledger is large, and a cluster or organization id is what operators have.
    search_fields = ["=cluster__public_id", "=organization__public_id"]
    search_help_text = "A cluster id (kc_…) or an organization id (org_…)"
    show_full_result_count = False

    @admin.display(description="cluster", ordering="cluster__public_id")
    def cluster_id_display(self, row) -> str:
        return row.cluster.public_id


@admin.register(UsageHour)
class UsageHourAdmin(ReadOnlyLedgerAdmin):
    list_display = [
        "hour",
        "cluster_id_display",
        "organization",
        "dimension",
        "quantity",
        "complete",
        "computed_at",
        "final_at",
    ]
    list_filter = ["dimension", "complete", FinalListFilter]
    ordering = ["-hour", "cluster_id", "dimension"]


@admin.register(UsageAdjustment)
class UsageAdjustmentAdmin(ReadOnlyLedgerAdmin):
    list_display = [
        "hour",
        "cluster_id_display",
        "organization",
        "dimension",
        "quantity",
        "created_at",
    ]
    list_filter = ["dimension"]
    ordering = ["-created_at"]


@admin.register(MeteringCursor)
class MeteringCursorAdmin(admin.ModelAdmin):
    """Where metering stands per cell: closed up to the watermark, the last run and its error."""

    list_display = ["cell", "watermark", "last_run_at", "last_error_summary"]
    list_select_related = ["cell"]
    readonly_fields = ["cell", "watermark", "last_run_at", "last_error"]
    actions = ["collect_now", "reopen_last_day"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="last error")
    def last_error_summary(self, cursor: MeteringCursor) -> str:
        return cursor.last_error[:120]

    @admin.action(description="Collect usage now")
    def collect_now(self, request, queryset) -> None:
        for cursor in queryset.select_related("cell"):
            collect_cell_usage.delay(cell=cursor.cell.slug)
        self.message_user(request, f"Collection started for {queryset.count()} cell(s).")

    @admin.action(description="Reopen the last 24 hours (recomputed by the next collection)")
    def reopen_last_day(self, request, queryset) -> None:
        since = timezone.now() - timedelta(hours=24)
        for cursor in queryset.select_related("cell"):
            metering.reopen(cursor.cell, since)
        self.message_user(
            request,
            f"{queryset.count()} cell(s) reopened from {since:%Y-%m-%d %H:%M} UTC; invoiced "
            "hours change only through adjustments.",
        )
