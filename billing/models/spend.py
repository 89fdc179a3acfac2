"""Spend control: where each organization's month stands (its settled tally), the caps its
owners set, and the caps reached."""

from django.db import models
from django.db.models import Q

from clusters.models import Cluster
from tenants.models import Organization
from tenants.scoping import TenantOwnedModel


class SpendTally(TenantOwnedModel):
    """An organization's month so far, up to ``settled_through``, as rated line segments
    (``[cluster id, dimension, first hour, last hour, quantity]``): what the spend check
    extends with the hours closed since, instead of reading the whole month each time."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    period_start = models.DateTimeField(help_text="The first instant of the month, UTC")
    settled_through = models.DateTimeField(help_text="The hours before this are in the lines")
    lines = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["-period_start", "organization_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "period_start"], name="spend_tally_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.organization_id} {self.period_start:%Y-%m} through {self.settled_through}"


class SpendCap(TenantOwnedModel):
    """A monthly spending cap in micro-dollars: the organization's (``cluster`` empty), or one
    cluster's. Reaching it slows the organization's (or the cluster's) shared-Kafka clusters
    down and refuses growth; nothing is deleted."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    cluster = models.ForeignKey(
        Cluster, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    monthly_micros = models.BigIntegerField(help_text="The cap per calendar month (UTC)")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["organization_id", "cluster_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization"],
                condition=Q(cluster__isnull=True),
                name="spend_cap_one_per_organization",
            ),
            models.UniqueConstraint(
                fields=["organization", "cluster"],
                condition=Q(cluster__isnull=False),
                name="spend_cap_one_per_cluster",
            ),
            models.CheckConstraint(
                condition=Q(monthly_micros__gte=0), name="spend_cap_not_negative"
            ),
        ]

    def __str__(self) -> str:
        scope = f"cluster {self.cluster_id}" if self.cluster_id else "organization"
        return f"{self.organization_id} {scope}: {self.monthly_micros} micro-dollars a month"


class SpendHold(TenantOwnedModel):
    """A cap reached in a month: while it holds (``lifted_at`` empty), the organization (or the
    cluster) is throttled and refused growth. Lifted when the cap is raised above the spend,
    removed, or the month ends; one open hold per cap and month."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    cluster = models.ForeignKey(
        Cluster, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    period_start = models.DateTimeField()
    cap_micros = models.BigIntegerField(help_text="The cap when it was reached")
    spend_micros = models.BigIntegerField(help_text="The month so far plus the projection then")
    reached_at = models.DateTimeField()
    lifted_at = models.DateTimeField(null=True, blank=True)
    lift_reason = models.CharField(max_length=32, blank=True)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["-reached_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "period_start"],
                condition=Q(cluster__isnull=True, lifted_at__isnull=True),
                name="spend_hold_open_once_per_organization",
            ),
            models.UniqueConstraint(
                fields=["organization", "cluster", "period_start"],
                condition=Q(cluster__isnull=False, lifted_at__isnull=True),
                name="spend_hold_open_once_per_cluster",
            ),
        ]

    def __str__(self) -> str:
        scope = f"cluster {self.cluster_id}" if self.cluster_id else "organization"
        state = "lifted" if self.lifted_at else "holding"
        return f"{self.organization_id} {scope} {self.period_start:%Y-%m}: {state}"
