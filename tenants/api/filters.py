import django_filters
from django import forms
from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from controlplane.api.fields import parse_rfc3339

from ..models import AuditEvent


class Rfc3339FormField(forms.Field):
    """An RFC 3339 date-time with its offset, exactly: an empty or padded value is refused
    rather than ignored, as the description's ``format: date-time`` says."""

    default_error_messages = {
        "invalid": "Not an RFC 3339 date-time: e.g. 2026-11-01T00:00:00Z "
        "(in a query string, write + as %%2B)"
    }

    def to_python(self, value):
        if value is None:
            return None
        try:
            return parse_rfc3339(value)
        except ValueError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


@extend_schema_field(OpenApiTypes.DATETIME)
class Rfc3339Filter(django_filters.Filter):
    field_class = Rfc3339FormField


class AuditEventFilter(django_filters.FilterSet):
    actor = django_filters.CharFilter(
        method="filter_actor", help_text="A member's e-mail address or an API key id (key_…)"
    )
    action = django_filters.BaseInFilter(
        field_name="action", help_text="One action, or several separated by commas"
    )
    target = django_filters.CharFilter(field_name="target_id", help_text="The target's id")
    since = Rfc3339Filter(field_name="created_at", lookup_expr="gte")
    until = Rfc3339Filter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["actor", "action", "target", "since", "until"]

    def filter_actor(self, queryset, name, value):
        return queryset.filter(
            Q(actor_user__email__iexact=value) | Q(actor_api_key__public_id=value)
        )
