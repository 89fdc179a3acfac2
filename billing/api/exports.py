"""The usage exports API: ``/api/v1/orgs/{org}/billing/exports/`` lists the organization's
exports, newest first, each done one's files with short-lived pre-signed download links, and
takes a POST to export a closed month again (``billing.exports``)."""

from datetime import datetime

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from foundation.api.validation import validated_data
from foundation.errors import InvalidInput
from tenants.api.base import OrganizationScopedViewSet

from .. import exports
from ..models import ExportState, ExportTrigger, UsageExport
from .serializers import Int64Field, Rfc3339Field


@extend_schema_field({"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$", "example": "2026-10"})
class MonthField(serializers.Field):
    """A calendar month, YYYY-MM in ASCII digits, from 1970: its first instant (UTC)."""

    def to_internal_value(self, data) -> datetime:
        try:
            return exports.month_parse(data, field=self.field_name)
        except InvalidInput as error:
            raise serializers.ValidationError(error.detail, code="invalid") from None

    def to_representation(self, value: datetime) -> str:
        return exports.month_label(value)


class UsageExportInputSerializer(serializers.Serializer):
    month = MonthField(help_text="The closed month to export (UTC)")


class UsageExportFileSerializer(serializers.Serializer):
    name = serializers.CharField(
        help_text="`usage-hours`, `usage-adjustments`, `invoice-lines` or `manifest.json`"
    )
    key = serializers.CharField(help_text="The object's key in the bucket")
    rows = Int64Field(allow_null=True, help_text="CSV rows after the header; null for the manifest")
    bytes = Int64Field(allow_null=True, help_text="The object's size as stored (gzip)")
    sha256 = serializers.CharField(allow_null=True, help_text="Of the bytes as stored, hex")
    download_url = serializers.URLField(
        help_text="A pre-signed GET of the object, valid for a few minutes from this answer"
    )


class UsageExportSerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    month = MonthField(source="period_start")
    trigger = serializers.ChoiceField(
        choices=ExportTrigger.choices,
        help_text="`month_close`: made when the month closed; `request`: asked for",
    )
    state = serializers.ChoiceField(
        choices=ExportState.choices,
        help_text="`pending` until written; `done` once every object and the manifest are in "
        "the bucket; `failed`, with `error`",
    )
    error = serializers.CharField(help_text="Why it failed; empty otherwise")
    bucket = serializers.CharField()
    prefix = serializers.CharField(help_text="usage/{org}/{yyyy}/{mm}/{export id}/")
    created_at = Rfc3339Field()
    completed_at = Rfc3339Field(allow_null=True)
    files = serializers.SerializerMethodField(
        help_text="Its objects and manifest, each with a download link; empty until `done`"
    )

    @extend_schema_field(UsageExportFileSerializer(many=True))
    def get_files(self, export) -> list[dict]:
        urls = exports.export_download_urls(export)
        if not urls:
            return []
        listed = [{**file, "download_url": urls[file["name"]]} for file in export.files]
        manifest = {
            "name": exports.MANIFEST,
            "key": export.prefix + exports.MANIFEST,
            "rows": None,
            "bytes": None,
            "sha256": None,
            "download_url": urls[exports.MANIFEST],
        }
        return UsageExportFileSerializer([*listed, manifest], many=True).data


# An export is a read of the month's usage and invoice: whoever may read invoices (owners,
# admins, billing members) may list, download and ask for one.
EXPORT_SCOPES = {"GET": "billing:read", "HEAD": "billing:read", "OPTIONS": "billing:read"}
EXPORT_SCOPES["POST"] = "billing:read"


class UsageExportViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet
):
    """The organization's usage exports, newest first: each closed month's ledger hours,
    adjustments and invoice lines as gzip CSV in the installation's bucket, with a manifest,
    downloaded through short-lived pre-signed links."""

    model = UsageExport
    scope_map = EXPORT_SCOPES
    serializer_class = UsageExportSerializer
    ordering = ("-created_at", "-id")

    @extend_schema(
        request=UsageExportInputSerializer,
        responses={202: UsageExportSerializer},
        description="Export a closed month again: a new set of objects under a new prefix "
        "(an earlier export is never overwritten), written in the background (`pending`, "
        "then `done` or `failed`); audited. A month not written YYYY-MM in ASCII digits, "
        "before 1970-01, or not begun yet is a 400 `validation` problem on `month`; a month "
        "not closed yet (the current one, or one whose invoice is not issued) a 409 "
        "`month_not_closed`; an installation without an export bucket a 409 "
        "`exports_not_configured`.",
    )
    def create(self, request, *args, **kwargs):
        data = validated_data(UsageExportInputSerializer, request.data)
        try:
            export = exports.export_request(
                organization=self.organization, period_start=data["month"], actor=self.actor
            )
        except InvalidInput as error:
            raise ValidationError({error.extra["field"]: [error.detail]}) from error
        return Response(UsageExportSerializer(export).data, status=202)
