"""Forms of the clusters web UI. They check the shape of the input and convert the units people
type (hours, days, MB/s) into the ones the services take; the rules live in the services."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from foundation.errors import DomainError, InvalidInput

from . import validation
from .models import MB, CleanupPolicy, Topic

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS


def explain(error: DomainError) -> str:
    """A service's refusal as a sentence, with the numbers of a quota when there are some."""
    if error.code == "quota_exceeded" and "maximum" in error.extra:
        limit = str(error.extra.get("limit", "")).replace("_", " ")
        return (
            f"Quota exceeded: {error.detail}. In use: {error.extra['current']} of "
            f"{error.extra['maximum']} {limit}; this asks for {error.extra['requested']} more."
        )
    if error.code == "capacity_unavailable":
        return f"No capacity: {error.detail}."
    return error.detail


def add_domain_error(form: forms.Form, error: DomainError) -> None:
    """Show a service's refusal next to the field it names (under the form's own name for it),
    or above the form."""
    field = error.extra.get("field")
    field = getattr(form, "service_fields", {}).get(field, field)
    form.add_error(field if field in form.fields else None, explain(error))


class ClusterCreateForm(forms.Form):
    name = forms.CharField(label="Cluster name", max_length=64)
    # Posted as `type`, the API's name for it, which the services' refusals name too.
    type = forms.ChoiceField(label="Tier", widget=forms.RadioSelect)
    region = forms.ChoiceField(label="Region")
    capacity_units = forms.IntegerField(
        label="Capacity units",
        min_value=1,
        required=False,
        help_text="Dedicated clusters only; empty means the smallest size.",
    )

    def __init__(self, *args, tier_choices, region_choices, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["type"].choices = tier_choices
        self.fields["region"].choices = region_choices
        if tier_choices:
            self.fields["type"].initial = tier_choices[0][0]


class RenameForm(forms.Form):
    name = forms.CharField(label="Name", max_length=64)


class ResizeForm(forms.Form):
    capacity_units = forms.IntegerField(label="Capacity units", min_value=1)


class ChangeTierForm(forms.Form):
    type = forms.ChoiceField(label="Tier")
    capacity_units = forms.IntegerField(
        label="Capacity units",
        min_value=1,
        required=False,
        help_text="For a dedicated tier; empty keeps the current number.",
    )

    def __init__(self, *args, tier_choices, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["type"].choices = tier_choices


class ClusterDeleteForm(forms.Form):
    confirm_name = forms.CharField(label="Type the cluster's name to confirm", max_length=64)

    def __init__(self, *args, cluster_name: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.cluster_name = cluster_name

    def clean_confirm_name(self) -> str:
        typed = self.cleaned_data["confirm_name"]
        if typed != self.cluster_name:
            raise forms.ValidationError(
                f"That is not the cluster's name: type {self.cluster_name} exactly."
            )
        return typed


class TopicCreateForm(forms.Form):
    RETENTION_UNITS = [("hours", "hours"), ("days", "days")]
    service_fields = {"retention_ms": "retention"}

    name = forms.CharField(label="Topic name", max_length=249)
    partitions = forms.IntegerField(label="Partitions", min_value=1, initial=3)
    retention = forms.IntegerField(label="Retention", min_value=1, required=False)
    retention_unit = forms.ChoiceField(
        label="Retention unit", choices=RETENTION_UNITS, initial="days"
    )
    cleanup_policy = forms.ChoiceField(
        label="Cleanup policy", choices=CleanupPolicy.choices, initial=CleanupPolicy.DELETE
    )

    @property
    def retention_ms(self) -> int | None:
        retention = self.cleaned_data.get("retention")
        if retention is None:
            return None
        unit = DAY_MS if self.cleaned_data.get("retention_unit") == "days" else HOUR_MS
        return retention * unit


class TopicSettingsForm(forms.Form):
    """A topic's retention, cleanup policy and the configs a tenant may set (one field each,
    named as in Kafka; empty leaves it to Kafka's default). Each config is checked by the rule
    the API uses (``validation.topic_configs``), so its refusal shows on its own field."""

    RETENTION_UNITS = [("minutes", "minutes"), ("hours", "hours"), ("days", "days")]
    UNIT_MS = {"minutes": MINUTE_MS, "hours": HOUR_MS, "days": DAY_MS}
    # The service names what it refuses; beyond config syntax (checked here) the only refusal
    # of ``configs`` is a shared tier's ceiling on retention.bytes.
    service_fields = {"retention_ms": "retention", "configs": "retention.bytes"}

    retention = forms.IntegerField(label="Retention", min_value=1)
    retention_unit = forms.ChoiceField(label="Retention unit", choices=RETENTION_UNITS)
    cleanup_policy = forms.ChoiceField(label="Cleanup policy", choices=CleanupPolicy.choices)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name, rule in validation.TOPIC_CONFIGS.items():
            self.fields[name] = forms.CharField(
                label=name, required=False, max_length=32, help_text=f"Empty, or {rule.expects}."
            )

    @classmethod
    def initial_of(cls, topic: Topic) -> dict:
        """The topic's current settings, its retention in the largest unit that keeps it exact
        (a retention of no whole minutes, set through the API, is shown rounded and kept
        unless it is changed here)."""
        unit = next(
            (u for u in ("days", "hours") if topic.retention_ms % cls.UNIT_MS[u] == 0), "minutes"
        )
        return {
            "retention": max(1, round(topic.retention_ms / cls.UNIT_MS[unit])),
            "retention_unit": unit,
            "cleanup_policy": topic.cleanup_policy,
            **topic.configs,
        }

    def config_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in validation.TOPIC_CONFIGS]

    def clean(self) -> dict:
        cleaned = super().clean()
        for name in validation.TOPIC_CONFIGS:
            value = (cleaned.get(name) or "").strip()
            try:
                validation.topic_configs({name: value} if value else {})
            except InvalidInput as error:
                self.add_error(name, error.detail)
        return cleaned

    @property
    def retention_ms(self) -> int | None:
        """The retention typed, in milliseconds; None when it was left as shown."""
        if not {"retention", "retention_unit"} & set(self.changed_data):
            return None
        return self.cleaned_data["retention"] * self.UNIT_MS[self.cleaned_data["retention_unit"]]

    @property
    def configs(self) -> dict[str, str]:
        return {
            name: self.cleaned_data[name].strip()
            for name in validation.TOPIC_CONFIGS
            if self.cleaned_data.get(name, "").strip()
        }


class PartitionsForm(forms.Form):
    partitions = forms.IntegerField(label="Partitions", min_value=1)


class CredentialCreateForm(forms.Form):
    service_fields = {
        "producer_byte_rate": "producer_mbps",
        "consumer_byte_rate": "consumer_mbps",
    }
    RATE_HELP = "MB/s (1 MB = 1,000,000 bytes); empty for no limit."

    name = forms.CharField(label="Name", max_length=100, help_text="What or who uses it.")
    producer_mbps = forms.DecimalField(
        label="Produce rate",
        min_value=Decimal("0.000001"),
        max_digits=12,
        decimal_places=6,
        required=False,
        help_text=RATE_HELP,
    )
    consumer_mbps = forms.DecimalField(
        label="Consume rate",
        min_value=Decimal("0.000001"),
        max_digits=12,
        decimal_places=6,
        required=False,
        help_text=RATE_HELP,
    )
    request_percentage = forms.IntegerField(
        label="Request time",
        min_value=1,
        max_value=100,
        required=False,
        help_text="Percent of a broker's request threads; empty for no limit.",
    )

    @staticmethod
    def _bytes_per_second(mbps: Decimal | None) -> int | None:
        return None if mbps is None else int(mbps * MB)

    def rates(self) -> dict[str, int | None]:
        """The quotas as the service takes them: bytes per second and a percentage."""
        return {
            "producer_byte_rate": self._bytes_per_second(self.cleaned_data.get("producer_mbps")),
            "consumer_byte_rate": self._bytes_per_second(self.cleaned_data.get("consumer_mbps")),
            "request_percentage": self.cleaned_data.get("request_percentage"),
        }


class OffsetResetForm(forms.Form):
    to = forms.ChoiceField(
        choices=[
            ("earliest", "Earliest: read everything still kept again"),
            ("latest", "Latest: skip to the end, read only what comes next"),
            ("timestamp", "A time: from the first record at or after it"),
        ],
        initial="earliest",
        label="Reset to",
    )
    timestamp = forms.DateTimeField(
        required=False, label="Time (UTC, with to = a time)", help_text="e.g. 2026-11-30 14:00"
    )
    topic = forms.CharField(
        required=False, max_length=249, label="Only this topic (empty: every topic)"
    )
