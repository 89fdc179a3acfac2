from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination


class CursorPage(CursorPagination):
    """Newest first, stable under inserts: ``?cursor=`` from ``next``/``previous``, ``?limit=``
    up to 200."""

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200
    ordering = ("-created_at", "-id")

    def get_page_size(self, request) -> int:
        # DRF ignores a limit it cannot read (0, -1, 1.5, "null") and clamps one above the
        # maximum; the description says 1 to 200, so anything else is refused.
        if self.page_size_query_param not in request.query_params:
            return self.page_size
        text = request.query_params[self.page_size_query_param]
        if not (text.isascii() and text.isdigit() and 1 <= int(text) <= self.max_page_size):
            raise ValidationError(
                {self.page_size_query_param: [f"An integer from 1 to {self.max_page_size}."]},
                code="invalid_limit",
            )
        return int(text)

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound as error:  # DRF answers a bad cursor with 404; it is bad input
            raise ValidationError({"cursor": ["Invalid cursor."]}, code="invalid_cursor") from error

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
                parameter["description"] = f"Results per page, 1 to {self.max_page_size}"
            if parameter["name"] == self.cursor_query_param:
                parameter["description"] = (
                    "An opaque position: only the `next` or `previous` link of a page gives one"
                )
        return parameters
