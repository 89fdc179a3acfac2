from datetime import UTC, date, datetime
from decimal import Decimal

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clusters import catalog
from clusters.models import METERED_DIMENSION_CHOICES, Dimension
from foundation.api import validation
from foundation.api.fields import TrimmedCharField
from foundation.errors import InvalidInput

from .. import costs, selectors
from ..accounts import EDITABLE_FIELDS
from ..countries import COUNTRY_CODES
from ..estimates import (
    ESTIMATE_MAX_CAPACITY_UNITS,
    ESTIMATE_MAX_MBPS,
    ESTIMATE_MAX_PARTITIONS,
    ESTIMATE_MAX_RETENTION_HOURS,
    Estimate,
)
from ..invoices import dollars
from ..models import BillingAccount, Currency, InvoiceLineKind, InvoiceState, PaymentStatus
from ..rating import HOUR, Line


@extend_schema_field(OpenApiTypes.DATETIME)
class Rfc3339Field(serializers.Field):
    """An RFC 3339 date-time with its offset (``Z`` or ``±hh:mm``), as UTC."""

    def to_internal_value(self, data) -> datetime:
        try:
            return validation.instant(data)
        except ValueError as error:
            raise serializers.ValidationError(str(error), code="invalid") from None

    def to_representation(self, value: datetime) -> str:
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@extend_schema_field({"type": "integer", "format": "int64"})
class Int64Field(serializers.IntegerField):
    pass


class UsageQuerySerializer(serializers.Serializer):
    granularity = serializers.ChoiceField(choices=selectors.GRANULARITIES, default="hour")
    dimension = serializers.ListField(child=serializers.CharField(allow_blank=True), default=list)
    start = Rfc3339Field(required=False)
    end = Rfc3339Field(required=False)

    def validate_dimension(self, values: list[str]) -> list[str]:
        # Repeated (?dimension=a&dimension=b) or a comma-separated list (?dimension=a,b).
        chosen = [d.strip() for value in values for d in value.split(",") if d.strip()]
        unknown = [d for d in chosen if d not in selectors.DIMENSIONS]
        if unknown:
            raise serializers.ValidationError(
                f"Unknown dimension {unknown[0]!r}: one of {', '.join(selectors.DIMENSIONS)}"
            )
        return list(dict.fromkeys(chosen))

    def validate(self, data: dict) -> dict:
        try:
            data["window"] = selectors.usage_window(
                granularity=data["granularity"], start=data.get("start"), end=data.get("end")
            )
        except InvalidInput as error:
            raise serializers.ValidationError(
                {error.extra.get("field", "non_field_errors"): [error.detail]}
            ) from error
        return data


class UsageBucketSerializer(serializers.Serializer):
    start = Rfc3339Field(help_text="The bucket's first instant (UTC); it lasts an hour or a day")
    quantity = Int64Field(
        help_text="Usage in the bucket, in the dimension's unit, adjustments included"
    )
    complete = serializers.BooleanField(
        help_text="No more usage is expected here: every hour the cluster(s) lived in the "
        "bucket is recorded and complete. False for the current bucket, future ones, and "
        "hours with missing samples"
    )
    adjustment = Int64Field(
        help_text="The part of quantity from usage found after its hour was invoiced "
        "(signed; billed on the next invoice)"
    )


class DimensionUsageSerializer(serializers.Serializer):
    dimension = serializers.ChoiceField(choices=METERED_DIMENSION_CHOICES)
    unit = serializers.ChoiceField(choices=list(dict.fromkeys(selectors.UNITS.values())))
    limit_per_bucket = Int64Field(
        allow_null=True,
        help_text="The most the cluster's tier (times its capacity units) allows in one "
        "bucket: ingress/egress bytes per second times the bucket's seconds, partitions or "
        "storage bytes times its hours. Null for an organization's usage (tier limits bind "
        "each cluster on its own) and for cluster-hours and capacity-unit-hours (a tier "
        "limits what a cluster does, not how long it lives)",
    )
    buckets = UsageBucketSerializer(many=True)


class UsageSerializer(serializers.Serializer):
    cluster = serializers.SerializerMethodField(
        help_text="The cluster's id, or null for the whole organization"
    )
    granularity = serializers.ChoiceField(choices=selectors.GRANULARITIES)
    start = Rfc3339Field(help_text="The window's start, floored to a bucket boundary (UTC)")
    end = Rfc3339Field(help_text="The window's end (exclusive), raised to a bucket boundary")
    dimensions = DimensionUsageSerializer(many=True)

    def get_cluster(self, usage: selectors.Usage) -> str | None:
        return usage.cluster.public_id if usage.cluster is not None else None


# The billing account -------------------------------------------------------------------------


@extend_schema_field({"type": "string", "enum": ["", *COUNTRY_CODES]})
class CountryField(serializers.ChoiceField):
    """An ISO 3166-1 alpha-2 code in capitals, or blank (the 249 codes, without their names)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(choices=COUNTRY_CODES, allow_blank=True, **kwargs)


class BillingAccountSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(
        read_only=True, allow_blank=True, help_text="Where invoices are sent, or blank"
    )
    country = CountryField(read_only=True, help_text="ISO 3166-1 alpha-2, or blank")
    stripe_customer_id = serializers.CharField(
        read_only=True, help_text="Blank until the account is created in Stripe; set by Sluice"
    )
    payment_status = serializers.ChoiceField(
        choices=PaymentStatus.choices,
        read_only=True,
        help_text="What Stripe last said about paying: `none` until a payment method is on "
        "file, `past_due` after a failed payment; set by Sluice",
    )
    updated_at = Rfc3339Field(read_only=True)

    class Meta:
        model = BillingAccount
        fields = [*EDITABLE_FIELDS, "stripe_customer_id", "payment_status", "updated_at"]
        read_only_fields = fields


class BillingAccountInputSerializer(serializers.Serializer):
    """Every field a tenant sets (PUT): blank clears one."""

    email = serializers.EmailField(
        max_length=254, allow_blank=True, help_text="Where invoices are sent"
    )
    name = TrimmedCharField(
        max_length=200, allow_blank=True, help_text="The person or company billed"
    )
    address_line1 = TrimmedCharField(max_length=200, allow_blank=True)
    address_line2 = TrimmedCharField(max_length=200, allow_blank=True)
    city = TrimmedCharField(max_length=100, allow_blank=True)
    postal_code = TrimmedCharField(max_length=20, allow_blank=True)
    country = CountryField(
        help_text="ISO 3166-1 alpha-2, in capitals (US, DE, FR), or blank",
    )
    tax_id = TrimmedCharField(
        max_length=64, allow_blank=True, help_text="A VAT or other tax number, as issued"
    )
    currency = serializers.ChoiceField(
        choices=Currency.choices, help_text="Sluice bills in US dollars only"
    )


class BillingAccountPatchSerializer(BillingAccountInputSerializer):
    """Any of the fields (PATCH): the others keep their values."""

    def get_fields(self) -> dict:
        fields = super().get_fields()
        for field in fields.values():
            field.required = False
        return fields


# Invoices ------------------------------------------------------------------------------------


class InvoiceSerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    period_start = Rfc3339Field(help_text="The month's first instant (UTC)")
    period_end = Rfc3339Field(help_text="The next month's first instant (exclusive)")
    state = serializers.ChoiceField(
        choices=InvoiceState.choices,
        help_text="`draft`: the month so far, recomputed until the month closes; `open`: "
        "final and due; then `paid`, `uncollectible` or `void`",
    )
    currency = serializers.ChoiceField(choices=Currency.choices)
    total_micros = Int64Field(help_text="The lines' amounts added up, in micro-dollars")
    total_cents = Int64Field(help_text="The lines' amounts in cents added up: what is charged")
    created_at = Rfc3339Field()
    finalized_at = Rfc3339Field(allow_null=True)
    paid_at = Rfc3339Field(allow_null=True)
    payment_failed_at = Rfc3339Field(
        allow_null=True,
        help_text="Stripe's last failed attempt to collect it, or null; while it is `open` or "
        "`uncollectible` with a failed payment, the billing account is `past_due`",
    )


class InvoiceLineSerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    kind = serializers.ChoiceField(
        choices=InvoiceLineKind.choices,
        help_text="`usage` of the month, or an `adjustment`: usage of an invoiced hour found "
        "later (signed)",
    )
    cluster_id = serializers.CharField(source="cluster_public_id")
    cluster_name = serializers.CharField(help_text="The cluster's name when it was billed")
    dimension = serializers.ChoiceField(choices=Dimension.choices)
    segment_start = Rfc3339Field(help_text="When this price started to apply in the month")
    segment_end = Rfc3339Field(help_text="When it stopped (exclusive)")
    quantity = Int64Field(help_text="In the dimension's base unit")
    unit_price_micros = Int64Field(help_text="Micro-dollars per `per_units` base units")
    per_units = Int64Field()
    amount_micros = Int64Field(
        help_text="quantity * unit_price_micros / per_units, rounded down to the micro-dollar"
    )
    amount_cents = Int64Field(help_text="amount_micros in cents, rounded half to even")
    remainder_micros = Int64Field(help_text="amount_micros - amount_cents * 10,000")


class InvoiceDetailSerializer(InvoiceSerializer):
    lines = InvoiceLineSerializer(many=True, source="lines.all")


# Costs ---------------------------------------------------------------------------------------


@extend_schema_field({"type": "string", "format": "date", "description": "YYYY-MM-DD (a UTC day)"})
class IsoDateField(serializers.Field):
    """A calendar date, YYYY-MM-DD in ASCII digits: a UTC day."""

    def to_internal_value(self, data) -> date:
        try:
            return costs.iso_date(data, field=self.field_name)
        except InvalidInput as error:
            raise serializers.ValidationError(error.detail, code="invalid") from None

    def to_representation(self, value: datetime | date) -> str:
        return (value.date() if isinstance(value, datetime) else value).isoformat()


class CostQuerySerializer(serializers.Serializer):
    start = IsoDateField(required=False)
    end = IsoDateField(required=False)
    granularity = serializers.ChoiceField(choices=costs.GRANULARITIES, default="day")
    cluster = serializers.CharField(required=False, max_length=64)

    def validate(self, data: dict) -> dict:
        try:
            data["start"], data["end"] = costs.cost_range(
                start=data.get("start"), end=data.get("end")
            )
        except InvalidInput as error:
            raise serializers.ValidationError({error.extra["field"]: [error.detail]}) from error
        return data


class CostSerializer(serializers.Serializer):
    date = IsoDateField(source="start", help_text="The UTC day")
    cluster_id = serializers.CharField(source="cluster_public_id")
    cluster_name = serializers.CharField(help_text="The cluster's name now")
    tier = serializers.CharField(help_text="The tier whose price applied (its `type` slug)")
    dimension = serializers.ChoiceField(choices=METERED_DIMENSION_CHOICES)
    unit = serializers.ChoiceField(choices=list(dict.fromkeys(selectors.UNITS.values())))
    quantity = Int64Field(help_text="Used in the day, in the dimension's base unit")
    unit_price_micros = Int64Field(help_text="Micro-dollars per `per_units` base units")
    per_units = Int64Field()
    unit_price_usd = serializers.SerializerMethodField(
        help_text="unit_price_micros as decimal US dollars (per `per_units` base units)"
    )
    amount_micros = Int64Field(
        help_text="quantity * unit_price_micros / per_units, rounded down to the micro-dollar "
        "for the day on its own"
    )
    amount_usd = serializers.SerializerMethodField(
        help_text="amount_micros as decimal US dollars, to the micro-dollar"
    )
    complete = serializers.BooleanField(
        help_text="Metering has closed every hour of the day and each one is complete: the "
        "amount will not change"
    )
    estimated = serializers.BooleanField(
        help_text="Some hour of the day that metering has closed lacks samples: the amount "
        "counts what was recorded"
    )

    def get_unit_price_usd(self, row: costs.CostRow) -> str:
        return dollars(row.unit_price_micros, places=6)

    def get_amount_usd(self, row: costs.CostRow) -> str:
        return dollars(row.amount_micros, places=6)


class CostsSerializer(serializers.Serializer):
    start = IsoDateField(help_text="The first day (UTC)")
    end = IsoDateField(help_text="The day after the last (exclusive)")
    granularity = serializers.ChoiceField(choices=costs.GRANULARITIES)
    currency = serializers.ChoiceField(choices=Currency.choices)
    total_micros = Int64Field(help_text="The rows' amount_micros added up")
    total_usd = serializers.CharField(help_text="total_micros as decimal US dollars")
    costs = CostSerializer(many=True)


# The cost estimate ---------------------------------------------------------------------------


def _mbps_field(direction: str) -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=13,
        decimal_places=6,
        min_value=Decimal(0),
        max_value=Decimal(ESTIMATE_MAX_MBPS),
        coerce_to_string=False,
        help_text=f"MB/s {direction} (10^6 bytes a second), steady, as a JSON number with at "
        "most six decimal places; at most the tier's limit times the capacity units",
    )


class EstimateInputSerializer(serializers.Serializer):
    type = serializers.ChoiceField(
        choices=catalog.TIER_SLUGS, help_text="An offered tier's slug (`GET /api/v1/catalog/`)"
    )
    ingress_mbps = _mbps_field("written")
    egress_mbps = _mbps_field("read")
    retention_hours = serializers.IntegerField(
        min_value=1,
        max_value=ESTIMATE_MAX_RETENTION_HOURS,
        help_text="How long records are kept: at most the tier's `max_retention_hours`, and "
        "what it keeps (ingress times retention) at most the tier's storage",
    )
    partitions = serializers.IntegerField(
        min_value=0,
        max_value=ESTIMATE_MAX_PARTITIONS,
        help_text="Partitions of all topics: at most the tier's `max_partitions` times the "
        "capacity units",
    )
    capacity_units = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=ESTIMATE_MAX_CAPACITY_UNITS,
        help_text="Dedicated tiers only (default: the tier's minimum), within the tier's "
        "`min_capacity_units`..`max_capacity_units`. Other tiers: 1 or absent.",
    )


class EstimateLineSerializer(serializers.Serializer):
    dimension = serializers.ChoiceField(choices=METERED_DIMENSION_CHOICES)
    unit = serializers.SerializerMethodField(help_text="The dimension's base unit")
    segment_start = Rfc3339Field(source="first_hour", help_text="The first hour at this price")
    segment_end = serializers.SerializerMethodField(help_text="After the last (exclusive)")
    quantity = Int64Field(help_text="The month's quantity, in the dimension's base unit")
    unit_price_micros = Int64Field(
        source="price.micros", help_text="Micro-dollars per `per_units` base units"
    )
    per_units = Int64Field(source="price.per_units")
    unit_price_usd = serializers.SerializerMethodField(
        help_text="unit_price_micros as decimal US dollars (per `per_units` base units)"
    )
    amount_micros = Int64Field(
        source="micros",
        help_text="quantity * unit_price_micros / per_units, rounded down to the micro-dollar",
    )
    amount_usd = serializers.SerializerMethodField(
        help_text="amount_micros as decimal US dollars, to the micro-dollar"
    )
    amount_cents = Int64Field(source="cents", help_text="amount_micros in cents, half to even")

    @extend_schema_field(
        serializers.ChoiceField(choices=list(dict.fromkeys(selectors.UNITS.values())))
    )
    def get_unit(self, line: Line) -> str:
        return selectors.UNITS[line.dimension]

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_segment_end(self, line: Line) -> str:
        return Rfc3339Field().to_representation(line.last_hour + HOUR)

    def get_unit_price_usd(self, line: Line) -> str:
        return dollars(line.price.micros, places=6)

    def get_amount_usd(self, line: Line) -> str:
        return dollars(line.micros, places=6)


class EstimateSerializer(serializers.Serializer):
    type = serializers.ChoiceField(
        choices=catalog.TIER_SLUGS, source="tier.slug", help_text="The tier estimated"
    )
    capacity_units = serializers.IntegerField(help_text="1 for tiers not sized in units")
    period_start = Rfc3339Field(source="start", help_text="The current hour (UTC)")
    period_end = Rfc3339Field(source="end", help_text="730 hours later (exclusive)")
    hours = serializers.IntegerField(help_text="730: a year's hours over twelve")
    currency = serializers.SerializerMethodField()
    lines = EstimateLineSerializer(
        many=True,
        help_text="One per priced dimension and price in force (a price version taking effect "
        "inside the period gives a dimension two lines); a dimension the tier does not price "
        "has none",
    )
    total_micros = Int64Field(help_text="The lines' amount_micros added up")
    total_usd = serializers.SerializerMethodField(
        help_text="total_micros as decimal US dollars, to the micro-dollar"
    )
    total_cents = Int64Field(
        help_text="The lines' amount_cents added up: what an invoice of these hours charges"
    )

    @extend_schema_field(serializers.ChoiceField(choices=Currency.choices))
    def get_currency(self, _estimate: Estimate) -> str:
        return Currency.USD

    def get_total_usd(self, estimate: Estimate) -> str:
        return dollars(estimate.total_micros, places=6)
