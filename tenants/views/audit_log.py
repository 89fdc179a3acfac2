"""An organization's audit log page, filtered by action and actor, a page at a time."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse

from .. import selectors
from ..access import OrganizationAccess
from ..audit_display import event_changes
from ..forms import AuditFilterForm
from .base import organization_view, render_section

AUDIT_EVENTS_PER_PAGE = 25


@organization_view(scopes={"GET": "audit:read"})
def audit(request: HttpRequest, access: OrganizationAccess) -> HttpResponse:
    events = selectors.audit_events(organization=access.organization)
    form = AuditFilterForm(
        request.GET,
        actions=list(events.order_by("action").values_list("action", flat=True).distinct()),
        actors=list(
            events.order_by("actor_label").values_list("actor_label", flat=True).distinct()
        ),
    )
    if form.is_valid():
        if form.cleaned_data["action"]:
            events = events.filter(action=form.cleaned_data["action"])
        if form.cleaned_data["actor"]:
            events = events.filter(actor_label=form.cleaned_data["actor"])
    else:
        events = events.none()
    page = Paginator(events.order_by("-created_at", "-id"), AUDIT_EVENTS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    rows = [{"event": event, "changes": event_changes(event)} for event in page]
    return render_section(request, access, "audit", {"form": form, "page": page, "rows": rows})
