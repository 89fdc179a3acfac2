import base64
import binascii
from urllib import parse

from django.db import models
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import Cursor, CursorPagination

from . import validation


class CursorPage(CursorPagination):
    """In the view's ``ordering`` (newest first when it names none), stable under inserts:
    ``?cursor=`` from ``next``/``previous``, ``?limit=`` from 1 to 200 (50 by default). A cursor
    or limit that is not one is a 400 ``validation`` problem naming the parameter, never a
    silent default."""

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200
    ordering = ("-created_at", "-id")

    def paginate_queryset(self, queryset, request, view=None):
        self._model = queryset.model  # a cursor's position must be a value of its ordering field
        return super().paginate_queryset(queryset, request, view)

    def get_page_size(self, request) -> int:
        if self.page_size_query_param not in request.query_params:
            return self.page_size
        size = validation.decimal_integer(
            request.query_params[self.page_size_query_param], minimum=1, maximum=self.max_page_size
        )
        if size is None:
            raise ValidationError(
                {self.page_size_query_param: [f"An integer from 1 to {self.max_page_size}."]},
                code="invalid_limit",
            )
        return size

    def get_ordering(self, request, queryset, view):
        # DRF reads a view's ``ordering`` only through OrderingFilter, which the API does not
        # use: without this, every list would be newest first whatever its view says.
        ordering = getattr(view, "ordering", None) or self.ordering
        return (ordering,) if isinstance(ordering, str) else tuple(ordering)

    def decode_cursor(self, request) -> Cursor | None:
        # DRF's own decoding, stricter: DRF skips characters that are not base64, reads any
        # script's digits, and passes the position to the query unchecked, where a forged one
        # fails as a server error.
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            return None
        try:
            text = base64.b64decode(encoded.encode("ascii"), validate=True).decode("ascii")
        except (UnicodeError, binascii.Error):
            raise _invalid_cursor() from None
        tokens = parse.parse_qs(text, keep_blank_values=True)
        offset = validation.decimal_integer(
            tokens.get("o", ["0"])[0], minimum=0, maximum=validation.INT64_RANGE[1]
        )
        reverse = tokens.get("r", ["0"])[0]
        position = tokens.get("p", [None])[0]
        if offset is None or reverse not in ("0", "1"):
            raise _invalid_cursor()
        if position is not None:
            field = self._model._meta.get_field(self.ordering[0].lstrip("-"))
            if not _is_value_of(field, position):
                raise _invalid_cursor()
        return Cursor(
            offset=min(offset, self.offset_cutoff), reverse=reverse == "1", position=position
        )

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["description"] = (
                    f"Results per page, 1 to {self.max_page_size} ({self.page_size} if absent)."
                )
                parameter["schema"] = {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": self.max_page_size,
                    "default": self.page_size,
                }
            elif parameter["name"] == self.cursor_query_param:
                parameter["description"] = (
                    "The `next` or `previous` link's cursor, as it is: any other value is a 400."
                )
        return parameters


def _invalid_cursor() -> ValidationError:
    return ValidationError({"cursor": ["Invalid cursor."]}, code="invalid_cursor")


def _is_value_of(field: models.Field, position: str) -> bool:
    """Whether a cursor's position (its ordering field's value, as text) is one the field can
    hold: a forged one must not reach the query, where it would fail as a server error."""
    if "\x00" in position:
        return False
    if isinstance(field, models.DateTimeField):
        try:
            validation.instant(position)
        except ValueError:
            return False
        return True
    if isinstance(field, models.IntegerField):  # the auto and big integer fields too
        return (
            validation.decimal_integer(position, minimum=0, maximum=validation.INT64_RANGE[1])
            is not None
        )
    if isinstance(field, models.CharField):
        return field.max_length is None or len(position) <= field.max_length
    return False  # an ordering on another kind of field needs its check here first
