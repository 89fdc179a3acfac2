from datetime import UTC, datetime

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clusters.models import METERED_DIMENSION_CHOICES
from foundation.api import validation
from foundation.errors import InvalidInput

from .. import selectors


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
