import django_filters
from django import forms
from django.db.models import Q

from foundation.api import validation

from ..models import AuditEvent


class CharInFilter(django_filters.BaseInFilter, django_filters.CharFilter):
    """Comma-separated text values, each checked as text is (no NUL characters)."""


class InstantField(forms.Field):
    def to_python(self, value):
        if value is None:  # absent; an empty value is not a date-time
            return None
        try:
            return validation.instant(value)
        except ValueError as error:
            # As a parameter: django-filter %-formats messages, and this one has a "%2B".
            raise forms.ValidationError(
                "%(reason)s", code="invalid", params={"reason": str(error)}
            ) from None


class InstantFilter(django_filters.Filter):
    """An RFC 3339 date-time with its offset, read as the rest of the API reads one."""

    field_class = InstantField


class AuditEventFilter(django_filters.FilterSet):
    actor = django_filters.CharFilter(
        method="filter_actor", help_text="A member's e-mail address or an API key id (key_…)"
    )
    action = CharInFilter(
        field_name="action", help_text="One action, or several separated by commas"
    )
    target = django_filters.CharFilter(field_name="target_id", help_text="The target's id")
    since = InstantFilter(field_name="created_at", lookup_expr="gte")
    until = InstantFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["actor", "action", "target", "since", "until"]

    def filter_actor(self, queryset, name, value):
        return queryset.filter(
            Q(actor_user__email__iexact=value) | Q(actor_api_key__public_id=value)
        )
