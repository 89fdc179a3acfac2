"""The tier recommendation as the API answers it (``GET …/clusters/{id}/recommendation/``)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clusters import catalog

from ..invoices import dollars
from ..models import Currency
from ..recommendation import LIMIT_NAMES, Option, Recommendation, Verdict
from .serializers import Int64Field, Rfc3339Field

TIER_CHOICES = catalog.TIER_SLUGS


class RecommendationPeaksSerializer(serializers.Serializer):
    ingress_bytes_per_hour = Int64Field(help_text="The most bytes written in one hour")
    ingress_mbps = serializers.DecimalField(
        max_digits=18,
        decimal_places=6,
        help_text="That hour as MB/s (10^6 bytes): bytes / 3,600 s / 10^6",
    )
    egress_bytes_per_hour = Int64Field(help_text="The most bytes read in one hour")
    egress_mbps = serializers.DecimalField(max_digits=18, decimal_places=6)
    partitions = serializers.IntegerField(help_text="The most partitions in one hour")
    storage_bytes = Int64Field(help_text="The most stored on average through one hour (one copy)")
    retention_ms = Int64Field(help_text="The longest retention of the live topics (0: no topic)")


class RecommendationOptionSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=TIER_CHOICES, source="tier.slug")
    capacity_units = serializers.IntegerField(
        help_text="The fewest that fit, for Dedicated; 1 for tiers not sized in units"
    )
    window_cents = Int64Field(
        help_text="The window's hours rated on this tier: what an invoice of them charges"
    )
    monthly_cents = Int64Field(
        help_text="window_cents scaled to a 730-hour month (times 730 over the window's hours, "
        "rounded down)"
    )
    monthly_usd = serializers.SerializerMethodField(help_text="monthly_cents in US dollars")

    def get_monthly_usd(self, option: Option) -> str:
        return dollars(option.monthly_cents, places=2)


class RecommendationUnfitSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=TIER_CHOICES, source="tier.slug")
    over = serializers.ListField(
        child=serializers.ChoiceField(choices=LIMIT_NAMES),
        help_text="The limits the peaks with headroom exceed, at the tier's largest size",
    )


class RecommendationSerializer(serializers.Serializer):
    cluster = serializers.CharField(source="cluster.public_id")
    verdict = serializers.ChoiceField(
        choices=Verdict.choices,
        help_text="`switch`: `recommended` costs less than the current tier; `stay`: no tier "
        "that fits costs less; `not_enough_history`: fewer than `required_hours` complete hours",
    )
    headroom_percent = serializers.IntegerField(
        help_text="A tier fits when its limits are at least each peak plus this percentage"
    )
    complete_hours = serializers.IntegerField(help_text="Complete ledger hours in the window")
    required_hours = serializers.IntegerField(help_text="168: a week")
    period_start = Rfc3339Field(source="start", allow_null=True)
    period_end = Rfc3339Field(
        source="end", allow_null=True, help_text="After the latest complete hour (exclusive)"
    )
    hours = serializers.IntegerField(help_text="The window's hours: at most 720 (0: no window)")
    currency = serializers.SerializerMethodField()
    peaks = RecommendationPeaksSerializer(allow_null=True)
    current = RecommendationOptionSerializer(
        allow_null=True,
        help_text="The current tier and size: its ledger hours of the window rated as invoices",
    )
    recommended = serializers.SerializerMethodField(
        help_text="The cheapest option when it costs less than the current (`switch`), else null"
    )
    monthly_saving_cents = Int64Field(help_text="current less recommended, a month (0: stay)")
    monthly_saving_usd = serializers.SerializerMethodField()
    options = RecommendationOptionSerializer(
        many=True, help_text="Every offered tier that fits, cheapest first"
    )
    unfit = RecommendationUnfitSerializer(
        many=True, help_text="The offered tiers that do not fit, and why"
    )

    @extend_schema_field(serializers.ChoiceField(choices=Currency.choices))
    def get_currency(self, _recommendation: Recommendation) -> str:
        return Currency.USD

    @extend_schema_field(RecommendationOptionSerializer(allow_null=True))
    def get_recommended(self, recommendation: Recommendation) -> dict | None:
        if recommendation.verdict != Verdict.SWITCH:
            return None
        return RecommendationOptionSerializer(recommendation.cheapest).data

    def get_monthly_saving_usd(self, recommendation: Recommendation) -> str:
        return dollars(recommendation.monthly_saving_cents, places=2)
