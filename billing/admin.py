"""The operators' view of billing: the usage ledger (every tenant's hours and adjustments),
billing accounts and invoices, and the events Stripe delivered.

The ledger is written only by metering (``services.record_hours``): an hour edited by hand
would be billed without a trace, so the admin shows it and changes nothing. Invoices and their
lines are money as rated: read-only too. A billing account's address may be corrected for a
tenant, through the same service (and audit) as the tenant's own changes; its Stripe customer
id and payment status are Sluice's."""

from datetime import timedelta

from django.contrib import admin
from django.utils import timezone

from foundation.admin import ReadOnlyAdminMixin
from tenants.admin import AllTenantsMixin
from tenants.audit import Actor
from tenants.scoping import tenant_scope

from . import accounts, invoices, metering
from .models import (
    BillingAccount,
    Invoice,
    InvoiceLine,
    MeteringCursor,
    StripeEvent,
    UsageAdjustment,
    UsageHour,
)
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


@admin.register(BillingAccount)
class BillingAccountAdmin(AllTenantsMixin, admin.ModelAdmin):
    list_display = [
        "organization",
        "email",
        "name",
        "country",
        "payment_status",
        "stripe_customer_id",
    ]
    list_filter = ["payment_status", "country"]
    list_select_related = ["organization"]
    search_fields = ["=organization__public_id", "email", "name", "=stripe_customer_id"]
    fields = ["organization", *accounts.EDITABLE_FIELDS, "stripe_customer_id", "payment_status"]
    readonly_fields = ["organization", "stripe_customer_id", "payment_status"]

    def has_add_permission(self, request) -> bool:
        return False  # made for each organization when first read

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        with tenant_scope(obj.organization):
            accounts.billing_account_update(
                organization=obj.organization,
                actor=Actor(user=request.user),
                **{name: form.cleaned_data[name] for name in form.changed_data},
            )


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    fields = readonly_fields = [
        "position",
        "public_id",
        "kind",
        "cluster_public_id",
        "cluster_name",
        "dimension",
        "segment_start",
        "segment_end",
        "quantity",
        "unit_price_micros",
        "per_units",
        "amount_micros",
        "amount_cents",
        "remainder_micros",
    ]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdminMixin, AllTenantsMixin, admin.ModelAdmin):
    list_display = ["public_id", "organization", "month", "state", "total", "stripe_invoice_id"]
    list_filter = ["state"]
    list_select_related = ["organization"]
    search_fields = ["=public_id", "=organization__public_id", "=stripe_invoice_id"]
    search_help_text = "An invoice id (invc_…), an organization id (org_…) or a Stripe invoice id"
    date_hierarchy = "period_start"
    ordering = ["-period_start", "-id"]
    inlines = [InvoiceLineInline]

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # An invoice's lines are its tenant's rows: read inside its scope, as the tenant's own
        # requests read them.
        invoice = (
            Invoice.unscoped_all_tenants.select_related("organization").filter(pk=object_id).first()
            if object_id
            else None
        )
        if invoice is None:
            return super().changeform_view(request, object_id, form_url, extra_context)
        with tenant_scope(invoice.organization):
            response = super().changeform_view(request, object_id, form_url, extra_context)
            if hasattr(response, "render"):
                response.render()  # templates render lazily: do it while in scope
        return response

    @admin.display(description="month", ordering="period_start")
    def month(self, invoice: Invoice) -> str:
        return f"{invoice.period_start:%Y-%m}"

    @admin.display(description="total (USD)", ordering="total_cents")
    def total(self, invoice: Invoice) -> str:
        return invoices.dollars(invoice.total_cents, places=2)


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """What Stripe delivered and what became of it: read-only, a record of what happened."""

    list_display = [
        "event_id",
        "type",
        "object_id",
        "organization",
        "livemode",
        "occurred_at",
        "received_at",
        "outcome",
        "processed_at",
    ]
    list_filter = ["outcome", "type", "livemode"]
    list_select_related = ["organization"]
    search_fields = ["=event_id", "=object_id", "=organization__public_id"]
    search_help_text = "An event id (evt_…), a Stripe invoice or customer id, or an organization id"
    date_hierarchy = "received_at"
    ordering = ["-received_at", "-id"]
