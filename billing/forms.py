"""The billing tab's form. It checks the shape of the input; ``accounts`` holds the rules."""

from __future__ import annotations

from django import forms

from .countries import COUNTRY_CHOICES
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
