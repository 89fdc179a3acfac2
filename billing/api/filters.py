import re

import django_filters
from django import forms
from drf_spectacular.utils import extend_schema_field

from ..invoices import month_period
from ..models import Invoice, InvoiceState

_MONTH = re.compile(r"(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])", re.ASCII)


class MonthField(forms.Field):
    """A calendar month written YYYY-MM, from 1970: its first instant (UTC)."""

    def to_python(self, value):
        if value is None:  # absent; an empty value is not a month
            return None
        match = _MONTH.fullmatch(value)
        if match is None:
            raise forms.ValidationError("A month: YYYY-MM, from 1970-01", code="invalid")
        return month_period(int(match[1]), int(match[2]))[0]


@extend_schema_field(
    {
        "type": "string",
        "pattern": f"^{_MONTH.pattern}$",
        "description": "The invoice's month: YYYY-MM (UTC)",
    }
)
class MonthFilter(django_filters.Filter):
    field_class = MonthField


class InvoiceFilter(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=InvoiceState.choices, help_text="One state")
    period = MonthFilter(field_name="period_start")

    class Meta:
        model = Invoice
        fields = ["state", "period"]
