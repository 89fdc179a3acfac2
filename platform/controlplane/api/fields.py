"""Input fields whose rules the OpenAPI description states exactly as the server applies them."""

import re
from datetime import UTC, datetime

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from rest_framework import serializers

# No leading or trailing whitespace and no line breaks, as a pattern (not trimmed away), so a
# name the description allows is a name the server keeps as sent. The classes are spelled out:
# \s and . differ between Python's and ECMAScript's regular expressions (clients check the
# pattern with the latter). Whitespace is the union of both (Python's str.strip, ECMAScript's \s).
_WHITESPACE = (
    r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_NOT_A_LINE_BREAK = r"[^\n\r\u2028\u2029]"
NAME_PATTERN = rf"^[^{_WHITESPACE}]({_NOT_A_LINE_BREAK}*[^{_WHITESPACE}])?$"


class PatternValidator(RegexValidator):
    """The whole value matches the pattern, as in the description: Python's ``$`` also matches
    before a trailing newline, ECMAScript's does not."""

    def __call__(self, value) -> None:
        if not self.regex.fullmatch(str(value)):
            raise ValidationError(self.message, code=self.code, params={"value": value})


class NameField(serializers.CharField):
    """A display name: 1 to ``max_length`` characters, no surrounding whitespace."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)
        self.validators.append(
            PatternValidator(
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
