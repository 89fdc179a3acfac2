"""Errors as RFC 9457 ``application/problem+json`` with a stable machine-readable ``code``.

Clients branch on ``code``; ``title`` and ``detail`` are for people and may change. Services
raise ``foundation.errors.DomainError`` subclasses; DRF's own exceptions map as below.
"""

from urllib.parse import unquote_plus

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.defaults import bad_request, page_not_found
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

from foundation.errors import DomainError

PROBLEM_CONTENT_TYPE = "application/problem+json"

# DRF's own exception codes, mapped to Sluice's stable ones.
_CODES: dict[type[exceptions.APIException], tuple[str, str]] = {
    exceptions.ValidationError: ("validation", "The request is not valid"),
    exceptions.ParseError: ("malformed_request", "The request body could not be parsed"),
    exceptions.NotAuthenticated: ("not_authenticated", "Authentication is required"),
    exceptions.AuthenticationFailed: ("authentication_failed", "The credentials are not valid"),
    exceptions.PermissionDenied: ("permission_denied", "You may not do this"),
    exceptions.NotFound: ("not_found", "Not found"),
    exceptions.MethodNotAllowed: ("method_not_allowed", "Method not allowed"),
    exceptions.NotAcceptable: ("not_acceptable", "Cannot produce an acceptable response"),
    exceptions.UnsupportedMediaType: ("unsupported_media_type", "Unsupported media type"),
    exceptions.Throttled: ("rate_limited", "Too many requests"),
}
# Django's own, which DRF's handler turns into its NotFound and PermissionDenied.
_DJANGO_CODES: dict[type[Exception], type[exceptions.APIException]] = {
    Http404: exceptions.NotFound,
    DjangoPermissionDenied: exceptions.PermissionDenied,
}
SERVER_ERROR = "server_error"


def problem_codes(domain_error: type[DomainError]) -> list[str]:
    """Every ``code`` a problem can carry: DRF's mapped ones, the domain errors' (all the
    subclasses imported so far, which the URLconf imports), and the server error's."""
    codes = {code for code, _title in _CODES.values()} | {SERVER_ERROR}
    pending = list(domain_error.__subclasses__())
    while pending:
        cls = pending.pop()
        codes.add(cls.code)
        pending.extend(cls.__subclasses__())
    return sorted(codes)


def problem_body(*, status_code: int, code: str, title: str, detail=None, **extra) -> dict:
    body = {"type": f"https://sluice.dev/problems/{code}", "title": title, "status": status_code}
    body["code"] = code
    if detail not in (None, ""):
        body["detail"] = detail
    body.update(extra)
    return body


def problem_exception_handler(exc, context) -> Response | None:
    if isinstance(exc, DomainError):
        set_rollback()
        body = problem_body(
            status_code=exc.status, code=exc.code, title=exc.title, detail=exc.detail, **exc.extra
        )
        return Response(body, status=exc.status, content_type=PROBLEM_CONTENT_TYPE)
    response = exception_handler(exc, context)
    if response is None:
        return None  # not an API error: Django's 500 handling takes over
    code, title = _lookup(exc)
    extra = {}
    if isinstance(exc, exceptions.ValidationError):
        errors = response.data
        extra["errors"] = errors if isinstance(errors, dict) else {"non_field_errors": errors}
        detail = "One or more fields are not valid; see errors."
    else:
        detail = response.data.get("detail") if isinstance(response.data, dict) else None
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        extra["retry_after"] = int(exc.wait)
    response.data = problem_body(
        status_code=response.status_code, code=code, title=title, detail=detail, **extra
    )
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def _lookup(exc: Exception) -> tuple[str, str]:
    for django_class, drf_class in _DJANGO_CODES.items():
        if isinstance(exc, django_class):
            return _CODES[drf_class]
    for cls in type(exc).__mro__:
        if cls in _CODES:
            return _CODES[cls]
    return ("error", "The request failed")


def _wants_problem(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _problem_response(*, status_code: int, code: str, title: str, detail=None) -> JsonResponse:
    body = problem_body(status_code=status_code, code=code, title=title, detail=detail)
    return JsonResponse(body, status=status_code, content_type=PROBLEM_CONTENT_TYPE)


def not_found_view(request: HttpRequest, exception=None) -> HttpResponse:
    if _wants_problem(request):
        return _problem_response(status_code=404, code="not_found", title="Not found")
    return page_not_found(request, exception, template_name="404.html")


def _carries_nul(request: HttpRequest) -> bool:
    return "\x00" in request.path or "\x00" in unquote_plus(request.META.get("QUERY_STRING", ""))


class ApiProblemMiddleware:
    """Under ``/api/``, the errors Django answers itself are problem+json too: the 404 of a
    path no route matches (an HTML page under DEBUG, where ``handler404`` is not used), and a
    body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (413 ``payload_too_large``, where Django would
    answer an HTML 400).

    Elsewhere (the web UI, the admin), a NUL character in the path or the query string is
    refused before any view runs (400): PostgreSQL cannot compare text holding one, so it could
    only end as a 500. The API refuses it itself, naming the parameter (its routes match ids by
    shape; its query parameters are validated)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not _wants_problem(request) and _carries_nul(request):
            return bad_request(request, ValueError("NUL character in the URL"))
        response = self.get_response(request)
        if (
            response.status_code == 404
            and _wants_problem(request)
            and response.get("Content-Type", "").startswith("text/html")
        ):
            return _problem_response(status_code=404, code="not_found", title="Not found")
        return response

    def process_exception(self, request: HttpRequest, exception: Exception):
        if isinstance(exception, RequestDataTooBig) and _wants_problem(request):
            return _problem_response(
                status_code=413,
                code="payload_too_large",
                title="The request body is too large",
                detail=f"At most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes",
            )
        return None


def server_error_view(request: HttpRequest) -> HttpResponse:
    if _wants_problem(request):
        body = problem_body(
            status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
            code=SERVER_ERROR,
            title="Something went wrong on our side",
        )
        return JsonResponse(body, status=500, content_type=PROBLEM_CONTENT_TYPE)
    return render(request, "500.html", status=500)
