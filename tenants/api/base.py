"""The base class of every ``/api/v1/orgs/{org}/…`` endpoint.

It resolves the organization from the URL, checks that the caller (a member's session or one of
the organization's API keys) belongs to it — answering 404, never 403, to outsiders, so an
organization's existence is not revealed — checks the caller's role grants the scope the HTTP
method needs, puts the organization in scope for the request, rate-limits per organization and
per caller, and honours ``Idempotency-Key`` on POST (keeping no secret for the replay).

Subclasses declare ``model``, ``scope_map`` and, if they must narrow it, ``scope_queryset``.
They cannot override the methods that enforce all this: defining one is a ``TypeError`` at import.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from rest_framework import exceptions, permissions, throttling
from rest_framework.generics import GenericAPIView
from rest_framework.viewsets import ViewSetMixin

from foundation import ratelimit
from foundation.api import secrets
from foundation.api.pagination import CursorPage

from .. import idempotency
from ..access import (
    MethodNotAllowed,
    NotAMember,
    OrganizationAccess,
    ScopeNotGranted,
    organization_access,
)
from ..audit import Actor
from ..backends import client_address
from ..models import ApiKey, Organization
from ..scoping import enter_tenant_scope, leave_tenant_scope

ENFORCING_METHODS = frozenset(
    {
        "dispatch",
        "initial",
        "get_queryset",
        "get_object",
        "get_permissions",
        "get_authenticators",
        "get_throttles",
        "handle_exception",
        "finalize_response",
        "permission_classes",
        "authentication_classes",
        "throttle_classes",
    }
)


class OrganizationMember(permissions.BasePermission):
    """The tenancy gate (``tenants.access``) in DRF's terms: outsiders get 404, a method the
    view lacks 405, a role without the method's scope 403."""

    def has_permission(self, request, view) -> bool:
        api_key = request.auth if isinstance(request.auth, ApiKey) else None
        try:
            access = organization_access(
                org=view.kwargs.get("org"), user=request.user, api_key=api_key
            )
        except NotAMember:
            raise exceptions.NotFound() from None
        view._enter_organization(request, access)
        allowed = {m.upper() for m in view.http_method_names if hasattr(view, m)}
        try:
            access.require(request.method, allowed=allowed, scope_map=view.scope_map)
        except MethodNotAllowed:
            raise exceptions.MethodNotAllowed(request.method) from None
        except ScopeNotGranted as refusal:
            raise exceptions.PermissionDenied(
                f"Your role ({refusal.role}) does not grant {refusal.needed or request.method}"
            ) from None
        return True


def caller_key(request) -> str:
    if isinstance(request.auth, ApiKey):
        return f"key:{request.auth.public_id}"
    return f"user:{request.user.pk}"


class CallerRateThrottle(throttling.BaseThrottle):
    """Per caller (one API key, or one user's session), per minute, in Redis."""

    WINDOW_SECONDS = 60

    def allow_request(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return True  # refused as unauthenticated anyway
        return self._decide(view, [(caller_key(request), "CALLER")])

    def _decide(self, view, counted: list[tuple[str, str]]) -> bool:
        limits = [
            (key, getattr(settings, f"SLUICE_RATE_LIMIT_{kind}_PER_MINUTE"))
            for key, kind in counted
        ]
        decisions = ratelimit.hit_all(limits, window=self.WINDOW_SECONDS)
        denied = [d for d in decisions if not d.allowed]
        view.rate_limit = denied[0] if denied else min(decisions, key=lambda d: d.remaining)
        self.retry_after = max((d.retry_after for d in denied), default=0)
        return not denied

    def wait(self) -> float:
        return self.retry_after


class AddressRateThrottle(CallerRateThrottle):
    """Per network address, per minute, in Redis: for the public endpoints that compute, which
    anyone may call without signing in."""

    def allow_request(self, request, view) -> bool:
        address = client_address(request) or "unknown"
        return self._decide(view, [(f"address:{address}", "ADDRESS")])


def add_rate_limit_headers(response, decision: ratelimit.Decision | None) -> None:
    """The RateLimit-* headers of the limit closest to refusing the request, if one counted."""
    if decision is not None:
        response["RateLimit-Limit"] = str(decision.limit)
        response["RateLimit-Remaining"] = str(decision.remaining)
        response["RateLimit-Reset"] = str(decision.reset_after)


class OrganizationRateThrottle(CallerRateThrottle):
    """Per organization (all its callers together) and per caller."""

    def allow_request(self, request, view) -> bool:
        return self._decide(
            view, [(f"org:{view.organization.public_id}", "ORG"), (caller_key(request), "CALLER")]
        )


class _IdempotentReplay(Exception):
    def __init__(self, response: HttpResponse) -> None:
        self.response = response


class OrganizationScopedView(GenericAPIView):
    permission_classes = [permissions.IsAuthenticated, OrganizationMember]
    throttle_classes = [OrganizationRateThrottle]
    pagination_class = CursorPage
    lookup_field = "public_id"
    lookup_url_kwarg = "id"
    lookup_value_regex = "[a-z]+_[a-z0-9]+"
    model = None
    scope_map: dict[str, str] = {}

    # Set for the request by OrganizationMember.
    access: OrganizationAccess
    organization: Organization
    role: str
    actor: Actor

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        is_base = cls.__dict__.get("_sluice_base", False)
        overridden = ENFORCING_METHODS & set(vars(cls))
        if overridden and not is_base:
            raise TypeError(
                f"{cls.__name__} may not override {', '.join(sorted(overridden))}: tenant "
                "scoping lives there. Narrow the rows with scope_queryset() instead."
            )
        # An abstract intermediate (shared helpers, no endpoint) need not declare a scope map;
        # it may still not override the enforcing methods.
        if not is_base and not cls.__dict__.get("abstract", False) and not cls.scope_map:
            raise TypeError(f"{cls.__name__} must declare scope_map")

    def scope_queryset(self, queryset):
        """Narrow (filter, select_related) the organization's rows; never widen them."""
        return queryset

    # Enforcement: final by __init_subclass__ -------------------------------------------------

    def get_queryset(self):
        if self.model is None:
            raise exceptions.MethodNotAllowed(self.request.method)
        if getattr(self, "swagger_fake_view", False):  # the schema generator, not a request
            return self.model.unscoped_all_tenants.none()
        return self.scope_queryset(self.model.objects.filter(organization=self.organization))

    def get_object(self):
        queryset = self.filter_queryset(self.get_queryset())
        obj = queryset.filter(**{self.lookup_field: self.kwargs.get(self.lookup_url_kwarg)}).first()
        if obj is None:
            raise exceptions.NotFound()
        self.check_object_permissions(self.request, obj)
        return obj

    def get_permissions(self):
        return [permission() for permission in OrganizationScopedView.permission_classes]

    def get_throttles(self):
        return [throttle() for throttle in OrganizationScopedView.throttle_classes]

    def dispatch(self, request, *args, **kwargs):
        self._scope_token = None
        self._idempotency_record = None
        self.rate_limit = None
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            if self._idempotency_record is not None:  # the request died before a response
                idempotency.abandon(record=self._idempotency_record)
            if self._scope_token is not None:
                leave_tenant_scope(self._scope_token)

    def initial(self, request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)  # authentication, access, rate limits
        key = request.headers.get(idempotency.HEADER)
        if request.method == "POST" and key is not None:
            record, stored = idempotency.begin(
                organization=self.organization,
                key=key,
                principal=str(request.user),
                request_fingerprint=idempotency.fingerprint(
                    method=request.method, path=request.path, data=request.data
                ),
            )
            if stored is not None:
                replay = HttpResponse(stored.body, status=stored.status_code)
                for name, value in stored.headers.items():
                    replay[name] = value
                replay["Idempotent-Replayed"] = "true"
                raise _IdempotentReplay(replay)
            self._idempotency_record = record

    def handle_exception(self, exc):
        if isinstance(exc, _IdempotentReplay):
            return exc.response
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        add_rate_limit_headers(response, self.rate_limit)
        if self._idempotency_record is not None:
            if hasattr(response, "render"):
                response.render()
            idempotency.complete(
                record=self._idempotency_record,
                status_code=response.status_code,
                body=response.content,
                headers=response,
                secret_fields=secrets.secret_fields_of(response),
            )
            self._idempotency_record = None
        return response

    def _enter_organization(self, request, access: OrganizationAccess) -> None:
        organization = access.organization
        self.access = access
        self.organization = organization
        self.role = access.role
        self.actor = access.actor(request)
        # Once per request: OPTIONS checks the permissions of each method it describes again,
        # and a second token would leave the first one's scope set after the request.
        if self._scope_token is None:
            self._scope_token = enter_tenant_scope(organization)

    _sluice_base = True


class OrganizationScopedViewSet(ViewSetMixin, OrganizationScopedView):
    _sluice_base = True
