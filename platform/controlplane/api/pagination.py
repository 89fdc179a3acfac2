from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination


class CursorPage(CursorPagination):
    """In the view's ``ordering`` (newest first when it names none), stable under inserts:
    ``?cursor=`` from ``next``/``previous``, ``?limit=`` up to 200."""

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200
    ordering = ("-created_at", "-id")

    def get_ordering(self, request, queryset, view):
        # DRF reads a view's ``ordering`` only through OrderingFilter, which the API does not
        # use: without this, every list would be newest first whatever its view says.
        ordering = getattr(view, "ordering", None) or self.ordering
        return (ordering,) if isinstance(ordering, str) else tuple(ordering)

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound as error:  # DRF answers a bad cursor with 404; it is bad input
            raise ValidationError({"cursor": ["Invalid cursor."]}, code="invalid_cursor") from error
