"""Input fields whose rules the OpenAPI description states exactly as the server applies them."""

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from rest_framework import serializers
from rest_framework.fields import empty

# Names are trimmed (DRF's CharField, with Python's str.strip), so a name must hold something
# besides whitespace. The class is spelled out, as Python's whitespace: \s differs between
# Python's and ECMAScript's regular expressions (clients check the pattern with the latter).
_WHITESPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NAME_PATTERN = rf"[^{_WHITESPACE}]"


class PatternValidator(RegexValidator):
    """The whole value matches the pattern, as in the description: Python's ``$`` also matches
    before a trailing newline, ECMAScript's does not."""

    def __call__(self, value) -> None:
        if not self.regex.fullmatch(str(value)):
            raise ValidationError(self.message, code=self.code, params={"value": value})


class TrimmedCharField(serializers.CharField):
    """Text trimmed of surrounding whitespace, at most ``max_length`` characters as sent (the
    length the description's maxLength states), so that padding cannot carry a longer value
    past it."""

    def run_validation(self, data=empty):
        if isinstance(data, str) and self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().run_validation(data)


class NameField(serializers.CharField):
    """A display name: trimmed, then 1 to ``max_length`` characters."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        # Trimming has run by then; the pattern is for the description (a name of whitespace
        # alone is blank once trimmed, and refused as such).
        self.validators.append(RegexValidator(NAME_PATTERN, message="A name is required."))

    def run_validation(self, data=empty):
        # The description's maxLength is of the name as sent, before trimming.
        if isinstance(data, str) and self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().run_validation(data)
