"""The web forms of the budget-alerts page: the budget and the webhook endpoint. They check the
shape of the input; ``budgets`` and ``webhook_endpoints`` hold the rules."""

from __future__ import annotations

from django import forms

from .budgets import MAX_THRESHOLDS, THRESHOLD_RANGE


class BudgetForm(forms.Form):
    monthly_usd = forms.CharField(
        label="Monthly budget (US$)",
        strip=False,
        max_length=40,
        help_text="Per calendar month (UTC), e.g. 250 or 250.00",
    )
    thresholds = forms.CharField(
        label="Alert at (% of the budget)",
        max_length=60,
        initial="50, 80, 100",
        help_text=f"Up to {MAX_THRESHOLDS} whole percentages from {THRESHOLD_RANGE[0]} to "
        f"{THRESHOLD_RANGE[1]}, separated by commas",
    )
    forecast_alert = forms.BooleanField(
        label="Also alert when the month's forecast passes the budget", required=False
    )

    def clean_thresholds(self) -> list[int]:
        values = [part.strip() for part in self.cleaned_data["thresholds"].split(",")]
        if not all(value.isascii() and value.isdigit() for value in values):
            raise forms.ValidationError("Whole percentages separated by commas, e.g. 50, 80, 100")
        return [int(value) for value in values]


class WebhookEndpointForm(forms.Form):
    url = forms.CharField(label="Webhook URL", max_length=2000, help_text="https://…")
    rotate_secret = forms.BooleanField(label="Make a new signing secret", required=False)
