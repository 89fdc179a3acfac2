"""The billing app's models, one module per part: the usage ledger, accounts and invoices,
Stripe (the outbox, alerts, events), spend control, budget alerts, and usage exports."""

from .budgets import (
    FORECAST,
    Budget,
    BudgetAlert,
    BudgetAlertKind,
    DeliveryState,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from .exports import ExportState, ExportTrigger, UsageExport, new_usage_export_id
from .invoices import (
    INVOICE_TRANSITIONS,
    BillingAccount,
    Currency,
    Invoice,
    InvoiceLine,
    InvoiceLineKind,
    InvoiceState,
    PaymentStatus,
    new_invoice_id,
    new_invoice_line_id,
)
from .ledger import ClosedMonth, MeteringCursor, UsageAdjustment, UsageHour
from .spend import SpendCap, SpendHold, SpendTally
from .stripe import (
    AlertKind,
    BillingAlert,
    OutboxState,
    StripeEvent,
    StripeEventOutcome,
    StripeOutbox,
)

__all__ = [
    "FORECAST",
    "INVOICE_TRANSITIONS",
    "AlertKind",
    "BillingAccount",
    "BillingAlert",
    "Budget",
    "BudgetAlert",
    "BudgetAlertKind",
    "ClosedMonth",
    "Currency",
    "DeliveryState",
    "ExportState",
    "ExportTrigger",
    "Invoice",
    "InvoiceLine",
    "InvoiceLineKind",
    "InvoiceState",
    "MeteringCursor",
    "OutboxState",
    "PaymentStatus",
    "SpendCap",
    "SpendHold",
    "SpendTally",
    "StripeEvent",
    "StripeEventOutcome",
    "StripeOutbox",
    "UsageAdjustment",
    "UsageExport",
    "UsageHour",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "new_invoice_id",
    "new_invoice_line_id",
    "new_usage_export_id",
]
