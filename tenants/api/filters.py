import django_filters
from django.db.models import Q

from ..models import AuditEvent


class AuditEventFilter(django_filters.FilterSet):
    actor = django_filters.CharFilter(
        method="filter_actor", help_text="A member's e-mail address or an API key id (key_…)"
    )
    action = django_filters.BaseInFilter(
        field_name="action", help_text="One action, or several separated by commas"
    )
    target = django_filters.CharFilter(field_name="target_id", help_text="The target's id")
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["actor", "action", "target", "since", "until"]

    def filter_actor(self, queryset, name, value):
        return queryset.filter(
            Q(actor_user__email__iexact=value) | Q(actor_api_key__public_id=value)
        )
