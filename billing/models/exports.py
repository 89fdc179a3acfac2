"""Usage exports: one row per export of an organization's month to the installation's bucket,
with its state and, once written, the manifest of what it wrote."""

from django.db import models
from django.db.models import Q

from foundation.ids import new_public_id
from tenants.models import Organization
from tenants.scoping import TenantOwnedModel


def new_usage_export_id() -> str:
    return new_public_id("uexp")


class ExportTrigger(models.TextChoices):
    MONTH_CLOSE = "month_close", "Month close"
    REQUEST = "request", "Requested"


class ExportState(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class UsageExport(TenantOwnedModel):
    """One export of an organization's closed month: its ledger hours, the adjustments to
    them or billed on its invoice, and the invoice's lines, as gzip CSV objects under
    ``prefix`` in ``bucket``, and a ``manifest.json`` written last. The prefix holds the
    export's id, so exporting a month again writes a new set beside the first.

    ``files`` is the manifest's list of objects (key, rows, bytes, SHA-256), kept so the
    organization's list of exports and its download links need no call to the bucket.
    ``claimed_at`` is when a worker last started writing it: another run waits until
    ``SLUICE_EXPORT_CLAIM_SECONDS`` have passed since, so one export is written by one run."""

    public_id = models.CharField(max_length=32, unique=True, default=new_usage_export_id)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    period_start = models.DateTimeField(help_text="The first instant of the month, UTC")
    trigger = models.CharField(max_length=16, choices=ExportTrigger.choices)
    state = models.CharField(
        max_length=16, choices=ExportState.choices, default=ExportState.PENDING
    )
    error = models.TextField(blank=True, help_text="Why the last attempt failed")
    bucket = models.CharField(max_length=255)
    prefix = models.CharField(max_length=512)
    files = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["-created_at", "-id"]
        constraints = [
            # The month close exports a month once; requests may export it again.
            models.UniqueConstraint(
                fields=["organization", "period_start"],
                condition=Q(trigger="month_close"),
                name="usage_export_one_per_month_close",
            ),
        ]
        indexes = [models.Index(fields=["organization", "-created_at"], name="usage_export_list")]

    def __str__(self) -> str:
        return f"{self.public_id} {self.period_start:%Y-%m} ({self.state})"
