"""The operators' view of billing: the usage ledger (every tenant's hours and adjustments),
billing accounts, invoices with their Stripe sync state, the Stripe outbox, billing alerts,
and the events Stripe delivered (spend control's are in ``spend_admin``).

The ledger is written only by metering (``services.record_hours``): an hour edited by hand
would be billed without a trace, so the admin shows it and changes nothing. Invoices and their
lines are money as rated: read-only too. A billing account's address may be corrected for a
tenant, through the same service (and audit) as the tenant's own changes; its Stripe customer
id and payment status are Sluice's. The outbox is the system's too: an operator sees each
push's state and last error and may retry it (``outbox.outbox_retry``), nothing else; an alert
is resolved through ``alerts.alert_resolve``."""

from datetime import UTC, timedelta

from django.contrib import admin, messages
from django.db.models import Exists, OuterRef
from django.db.models.functions import TruncMonth
from django.utils import timezone

from foundation.admin import ReadOnlyAdminMixin
from tenants.admin import AllTenantsMixin
from tenants.audit import Actor
from tenants.scoping import tenant_scope

from . import accounts, alerts, invoices, metering, outbox, spend_admin  # noqa: F401 - registers
from .models import (
    BillingAccount,
    BillingAlert,
    ClosedMonth,
    Invoice,
    InvoiceLine,
    MeteringCursor,
    OutboxState,
    StripeEvent,
    StripeOutbox,
    UsageAdjustment,
    UsageHour,
)
from .stripe_gateway import stripe_configured
from .tasks import collect_cell_usage


def _month_closed():
    """Whether the row's month is closed for its organization (its hours are final)."""
    return Exists(
        ClosedMonth.unscoped_all_tenants.filter(
            organization_id=OuterRef("organization_id"),
            period_start=OuterRef("month"),
        )
    )


class FinalListFilter(admin.SimpleListFilter):
    title = "final (month closed)"
    parameter_name = "final"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(**{"month_closed": self.value() == "yes"})
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
        "final",
    ]
    list_filter = ["dimension", "complete", FinalListFilter]
    ordering = ["-hour", "cluster_id", "dimension"]

    def get_queryset(self, request):
        rows = super().get_queryset(request).annotate(month=TruncMonth("hour", tzinfo=UTC))
        return rows.annotate(month_closed=_month_closed())

    @admin.display(description="final", boolean=True)
    def final(self, row) -> bool:
        return row.month_closed


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
        "stripe_invoice_item_id",
    ]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdminMixin, AllTenantsMixin, admin.ModelAdmin):
    list_display = [
        "public_id",
        "organization",
        "month",
        "state",
        "total",
        "stripe_invoice_id",
        "stripe_sync",
    ]
    list_filter = ["state", "outbox__state"]
    list_select_related = ["organization", "outbox"]
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

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "stripe_sync"]

    @admin.display(description="Stripe sync")
    def stripe_sync(self, invoice: Invoice) -> str:
        row = getattr(invoice, "outbox", None)
        if row is None:
            return "not closed: nothing to push"
        return outbox_summary(row)


def outbox_summary(row: StripeOutbox) -> str:
    if row.state == OutboxState.DONE:
        return f"pushed {row.done_at:%Y-%m-%d %H:%M} UTC"
    if row.state == OutboxState.FAILED:
        return f"failed: {row.last_error[:120]}"
    if not stripe_configured():
        return "pending: Stripe is not configured (no STRIPE_API_KEY), nothing is pushed"
    if row.attempts:
        return f"pending: {row.attempts} failed attempt(s), next {row.next_attempt_at:%H:%M:%S}"
    return "pending"


@admin.register(StripeOutbox)
class StripeOutboxAdmin(ReadOnlyAdminMixin, AllTenantsMixin, admin.ModelAdmin):
    """Every closed invoice's push to Stripe. Read-only: only the push's worker writes a row;
    an operator may retry one (a failed row after its cause was fixed, or a pending one now
    instead of after its backoff)."""

    list_display = [
        "invoice_id_display",
        "organization",
        "state",
        "attempts",
        "next_attempt_at",
        "last_error_summary",
        "done_at",
    ]
    list_filter = ["state"]
    list_select_related = ["invoice", "organization"]
    search_fields = ["=invoice__public_id", "=organization__public_id"]
    search_help_text = "An invoice id (invc_…) or an organization id (org_…)"
    ordering = ["-created_at", "-id"]
    actions = ["retry_now"]

    def changelist_view(self, request, extra_context=None):
        if not stripe_configured():
            self.message_user(
                request,
                "Stripe is not configured (no STRIPE_API_KEY): nothing is pushed, and pending"
                " pushes wait for a key.",
                level=messages.WARNING,
            )
        return super().changelist_view(request, extra_context)

    @admin.display(description="invoice", ordering="invoice__public_id")
    def invoice_id_display(self, row: StripeOutbox) -> str:
        return row.invoice.public_id

    @admin.display(description="last error")
    def last_error_summary(self, row: StripeOutbox) -> str:
        return row.last_error[:120]

    @admin.action(description="Retry now")
    def retry_now(self, request, queryset) -> None:
        actor = Actor(user=request.user)
        retried = sum(outbox.outbox_retry(outbox=row, actor=actor) for row in queryset)
        self.message_user(
            request,
            f"{retried} push(es) queued again; pushed ones, and ones a worker holds, are left"
            " as they are.",
        )


class OpenAlertFilter(admin.SimpleListFilter):
    title = "open"
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return [("yes", "Open"), ("no", "Resolved")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(resolved_at__isnull=self.value() == "yes")
        return queryset


@admin.register(BillingAlert)
class BillingAlertAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "kind",
        "subject",
        "organization",
        "message_summary",
        "created_at",
        "resolved_at",
    ]
    list_filter = [OpenAlertFilter, "kind"]
    list_select_related = ["organization"]
    search_fields = ["=subject", "=organization__public_id"]
    actions = ["resolve"]

    @admin.display(description="message")
    def message_summary(self, alert: BillingAlert) -> str:
        return alert.message[:160]

    @admin.action(description="Mark resolved")
    def resolve(self, request, queryset) -> None:
        resolved = sum(
            alerts.alert_resolve(kind=alert.kind, subject=alert.subject)
            for alert in queryset.filter(resolved_at=None)
        )
        self.message_user(request, f"{resolved} alert(s) resolved.")


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
