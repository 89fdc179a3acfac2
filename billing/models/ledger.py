"""The usage ledger: hours, adjustments, closed months and the metering cursors."""

from django.db import models
from django.db.models import Q

from clusters.models import METERED_DIMENSION_CHOICES, Cell, Cluster
from tenants.models import Organization
from tenants.scoping import TenantOwnedModel


class UsageHour(TenantOwnedModel):
    """One cluster's usage of one dimension in one UTC hour: the ledger's unit.

    Written only as a whole recomputed snapshot (an upsert), never incremented, so computing an
    hour again, twice or concurrently, leaves the same row. ``complete`` is False while samples
    are missing (a gap, or the hour still going on). A recomputation may change an hour until
    the organization's month is closed (``ClosedMonth``): from then on the row is final, and a
    change becomes a UsageAdjustment instead.
    """

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="usage_hours")
    dimension = models.CharField(max_length=32, choices=METERED_DIMENSION_CHOICES)
    hour = models.DateTimeField(help_text="Start of the hour, UTC")
    quantity = models.BigIntegerField()
    complete = models.BooleanField(default=False)
    computed_at = models.DateTimeField()

    class Meta(TenantOwnedModel.Meta):
        ordering = ["hour", "cluster_id", "dimension"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "dimension", "hour"], name="usage_hour_unique"
            ),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="usage_hour_not_negative"),
        ]
        indexes = [
            models.Index(fields=["organization", "hour"], name="usage_hour_by_org"),
        ]

    def __str__(self) -> str:
        return f"{self.cluster_id} {self.dimension} {self.hour:%Y-%m-%d %H}:00 = {self.quantity}"


class UsageAdjustment(TenantOwnedModel):
    """Usage that changed after its hour was invoiced: billed on the next invoice."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="+")
    dimension = models.CharField(max_length=32, choices=METERED_DIMENSION_CHOICES)
    hour = models.DateTimeField()
    quantity = models.BigIntegerField(help_text="Signed: what the final hour missed or overcounted")
    created_at = models.DateTimeField(auto_now_add=True)
    # The month whose invoice carries it (the first to close after it was made): kept on the
    # adjustment, not the invoice, so replaying a month from the ledger finds the same lines.
    billed_period_start = models.DateTimeField(null=True, blank=True)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["created_at"]
        indexes = [
            models.Index(fields=["cluster", "dimension", "hour"], name="usage_adjustment_hour"),
            models.Index(
                fields=["organization", "billed_period_start"], name="usage_adjustment_billed"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.cluster_id} {self.dimension} {self.hour:%Y-%m-%d %H}:00 {self.quantity:+}"


class ClosedMonth(TenantOwnedModel):
    """An organization's calendar month (UTC) that the month close has frozen: every ledger
    hour of it is final from ``closed_at``. One row per organization and month, not a mark on
    each of its hours: a month of 10,000 clusters is some 30 million rows, and marking each
    would rewrite them all. Kept when invoices are voided or replayed: it is the ledger's
    state, not the invoice's."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    period_start = models.DateTimeField(help_text="The first instant of the month, UTC")
    closed_at = models.DateTimeField()
    estimated = models.BooleanField(
        default=False, help_text="Closed over hours still incomplete after the grace period"
    )

    class Meta(TenantOwnedModel.Meta):
        ordering = ["-period_start", "organization_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "period_start"], name="closed_month_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.organization_id} {self.period_start:%Y-%m} closed at {self.closed_at}"


class MeteringCursor(models.Model):
    """How far metering has read a cell's Prometheus: the watermark.

    Hours that ended at or before ``watermark`` are closed: samples that late are not expected
    any more, and runs no longer read them. Hours after it are open and are recomputed by every
    run, so samples that land late are counted. Moving the watermark back (``reopen``) makes
    the next run recompute from there.
    """

    cell = models.OneToOneField(Cell, on_delete=models.CASCADE, related_name="metering_cursor")
    watermark = models.DateTimeField()
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.cell_id}: closed up to {self.watermark:%Y-%m-%d %H:%M:%S}"
