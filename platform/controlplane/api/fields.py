"""Input fields whose rules the OpenAPI description states exactly as the server applies them."""

import re
from datetime import UTC, datetime

from django.core.validators import RegexValidator
from rest_framework import serializers

# No leading or trailing whitespace and no line breaks, as a pattern (not trimmed away), so a
# name the description allows is a name the server keeps as sent.
NAME_PATTERN = r"^\S(.*\S)?$"


class NameField(serializers.CharField):
    """A display name: 1 to ``max_length`` characters, no surrounding whitespace."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)
        self.validators.append(
            RegexValidator(
                NAME_PATTERN, message="Names have no leading or trailing spaces or line breaks."
            )
        )


# RFC 3339's date-time, as the description's `format: date-time` means it: a full date, a time
# with seconds, and an offset (Python's fromisoformat alone would also take dates, week dates,
# no offset, or surrounding spaces).
RFC3339_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", re.ASCII
)


def parse_rfc3339(text) -> datetime:
    """The RFC 3339 date-time ``text`` names, in UTC; ValueError for anything else."""
    if not isinstance(text, str) or not RFC3339_DATE_TIME.match(text):
        raise ValueError(f"not an RFC 3339 date-time: {text!r}")
    try:
        return datetime.fromisoformat(text.upper()).astimezone(UTC)
    except OverflowError as error:  # representable with its offset, not in UTC
        raise ValueError(f"out of range: {text!r}") from error
