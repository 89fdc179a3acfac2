"""Billing's web forms: the billing tab's, and the cost estimate's on the cluster forms. They
check the shape of the input; ``accounts`` and ``estimates`` hold the rules."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from clusters.catalog import TIER_SLUGS

from .countries import COUNTRY_CHOICES
from .estimates import (
    ESTIMATE_MAX_CAPACITY_UNITS,
    ESTIMATE_MAX_MBPS,
    ESTIMATE_MAX_PARTITIONS,
    ESTIMATE_MAX_RETENTION_HOURS,
)
from .models import BillingAccount, Currency


def _text(name: str, label: str, **kwargs) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        max_length=BillingAccount._meta.get_field(name).max_length,
        **kwargs,
    )


class BillingAccountForm(forms.Form):
    email = forms.EmailField(
        label="Billing e-mail", required=False, max_length=254, help_text="Where invoices are sent"
    )
    name = _text("name", "Name or company")
    address_line1 = _text("address_line1", "Address")
    address_line2 = _text("address_line2", "Address (second line)")
    city = _text("city", "City")
    postal_code = _text("postal_code", "Postal code")
    country = forms.ChoiceField(
        label="Country", required=False, choices=[("", "—"), *COUNTRY_CHOICES]
    )
    tax_id = _text("tax_id", "Tax id", help_text="A VAT or other tax number, as issued")
    currency = forms.ChoiceField(label="Currency", choices=Currency.choices)

    def __init__(self, *args, read_only: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if read_only:
            for field in self.fields.values():
                field.disabled = True


def _mbps(label: str) -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        max_digits=13,
        decimal_places=6,
        min_value=Decimal(0),
        max_value=Decimal(ESTIMATE_MAX_MBPS),
        widget=forms.NumberInput(attrs={"step": "any", "class": "narrow-number"}),
    )


class EstimateForm(forms.Form):
    """A workload to estimate. The tier and capacity units come from the cluster form the
    estimate sits in; the throughput fields are the estimate's own, shown in it."""

    # The workload assumed until one is entered.
    DEFAULTS = {"ingress_mbps": "1", "egress_mbps": "1", "retention_hours": "24", "partitions": "6"}
    THROUGHPUT_FIELDS = ("ingress_mbps", "egress_mbps", "retention_hours", "partitions")

    type = forms.ChoiceField(label="Tier", required=False, choices=[(s, s) for s in TIER_SLUGS])
    capacity_units = forms.IntegerField(
        label="Capacity units", required=False, min_value=1, max_value=ESTIMATE_MAX_CAPACITY_UNITS
    )
    ingress_mbps = _mbps("MB/s in")
    egress_mbps = _mbps("MB/s out")
    retention_hours = forms.IntegerField(
        label="Retention (h)",
        min_value=1,
        max_value=ESTIMATE_MAX_RETENTION_HOURS,
        widget=forms.NumberInput(attrs={"class": "narrow-number"}),
    )
    partitions = forms.IntegerField(
        label="Partitions",
        min_value=0,
        max_value=ESTIMATE_MAX_PARTITIONS,
        widget=forms.NumberInput(attrs={"class": "narrow-number"}),
    )

    def __init__(self, query, **kwargs) -> None:
        data = dict(self.DEFAULTS)
        for key in query:
            # A cluster form may prefix its fields ("resize-capacity_units").
            name = key.rpartition("-")[2]
            if name in self.base_fields and (key == name or name not in query):
                data[name] = query[key]
        super().__init__(data, auto_id="estimate-%s", **kwargs)

    def throughput_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.THROUGHPUT_FIELDS]

    def other_errors(self) -> list[str]:
        """The errors not shown beside a field of the estimate: the form's own, and those of
        the cluster form's fields (tier, capacity units)."""
        shown = set(self.THROUGHPUT_FIELDS)
        return [
            f"{self[name].label}: {error}" if name in self.fields else error
            for name, errors in self.errors.items()
            if name not in shown
            for error in errors
        ]
