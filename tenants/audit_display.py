"""How an audit event's change reads on a page: each field it names with its value before and
after, durations, byte sizes and rates in words, numbers with separators, times in UTC. The
audit page and a cluster's operations list show it the same way."""

from __future__ import annotations

from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format

from foundation.text import bytes_label, duration_label, rate_label

from .models import AuditEvent


def event_changes(event: AuditEvent) -> list[tuple[str, object, object]]:
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
