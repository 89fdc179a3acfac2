"""An organization's audit log page, filtered by action and actor, a page at a time."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format

from foundation.text import bytes_label, duration_label, rate_label

from .. import selectors
from ..access import OrganizationAccess
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
    rows = [{"event": event, "changes": _changes(event)} for event in page]
    return render_section(request, access, "audit", {"form": form, "page": page, "rows": rows})


def _changes(event) -> list[tuple[str, object, object]]:
    """(field, before, after) for each field the event names, for a compact display."""
    before, after = event.before or {}, event.after or {}
    return [
        (name, _readable(name, before.get(name)), _readable(name, after.get(name)))
        for name in {**before, **after}
    ]


def _readable(name: str, value):
    """A snapshot's value as the pages show it: durations, byte sizes and rates in words,
    numbers with thousands separators, times in UTC."""
    if isinstance(value, int) and not isinstance(value, bool):
        if name.endswith("_ms"):
            return duration_label(value)
        if name.endswith("byte_rate"):
            return rate_label(value)
        if name.endswith("bytes"):
            return bytes_label(value)
        return f"{value:,}"
    # Snapshots keep times as ISO 8601 strings; show them as the rest of the page does.
    if isinstance(value, str):
        try:
            moment = parse_datetime(value)
        except ValueError:
            moment = None
        if moment is not None:
            return date_format(moment, "Y-m-d H:i")
    return value
