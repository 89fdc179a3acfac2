"""JSON request bodies, bounded: no body of this API nests deeper than a few levels, and no text
of it may hold a NUL character (PostgreSQL's text and jsonb cannot store one). Either is a 400
``malformed_request`` problem, before any view sees the body."""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:  # the decoder's own limit: nested about a thousand deep
            raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels") from None
        _check(data)
        return data


def _check(data) -> None:
    """Walks the parsed body without recursion (a recursive walk is what a deep body breaks)."""
    pending = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise ParseError("Text in the body may not contain NUL (\\u0000) characters")
        elif isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and "\x00" in key:
                    raise ParseError("Text in the body may not contain NUL (\\u0000) characters")
                pending.append((item, depth + 1))
