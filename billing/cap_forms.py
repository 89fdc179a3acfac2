"""The web form of the spend-caps page: set or remove the organization's cap or a cluster's.
It reads the amount by the API's rules (``money``); ``caps`` holds the rest."""

from __future__ import annotations

from django import forms

from .caps import MAX_CAP_MICROS
from .money import InvalidAmount, micros_from_dollars

SET, REMOVE = "set", "remove"


class CapForm(forms.Form):
    action = forms.ChoiceField(choices=[(SET, "Set"), (REMOVE, "Remove")], widget=forms.HiddenInput)
    # Empty for the organization's own cap.
    cluster = forms.ChoiceField(label="Cluster", required=False)
    monthly_cap = forms.CharField(
        label="Monthly cap (US$)",
        required=False,
        strip=False,
        max_length=40,
        help_text="Per calendar month (UTC), e.g. 250 or 99.50; 0 stops all growth",
    )

    def __init__(self, *args, clusters: list[tuple[str, str]], capped: set[str], **kwargs) -> None:
        """``clusters``: the (public id, name) of the clusters that may be chosen; ``capped``:
        the public ids of those with a cap already (whose form is their row's)."""
        super().__init__(*args, **kwargs)
        self.fields["cluster"].choices = [("", "The organization"), *clusters]
        self.place = self._place(capped)
        self.auto_id = f"id_{self.place}_%s"

    def clean_monthly_cap(self) -> int | None:
        text = self.cleaned_data["monthly_cap"]
        if self.cleaned_data.get("action") != SET:
            return None
        if text == "":
            raise forms.ValidationError("Write the monthly cap in US dollars, e.g. 250")
        try:
            return micros_from_dollars(
                text, field="monthly_cap", allow_zero=True, maximum_micros=MAX_CAP_MICROS
            )
        except InvalidAmount as refused:
            raise forms.ValidationError(refused.detail, code=refused.extra["reason"]) from None

    @property
    def cluster_id(self) -> str | None:
        """The cluster (its public id), or ``None`` for the organization."""
        return (self.data.get("cluster") if self.is_bound else self.initial.get("cluster")) or None

    def _place(self, capped: set[str]) -> str:
        """Where the form is on the page: the organization's card, a capped cluster's row, or
        the form that adds a cluster's cap."""
        if self.cluster_id is None:
            return "organization"
        return f"cluster-{self.cluster_id}" if self.cluster_id in capped else "new"
