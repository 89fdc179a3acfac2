"""An organization's API keys page: the keys, creating one (shown once) and revoking one."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.cache import add_never_cache_headers

from foundation.errors import DomainError

from .. import selectors, services
from ..access import OrganizationAccess
from ..forms import ApiKeyForm, add_domain_error
from ..models import ApiKey
from ..roles import Role, can_grant
from .base import organization_view, render_section
from .feedback import back_with_refused, notify, refused_form


@organization_view(scopes={"GET": "apikeys:read", "POST": "apikeys:write"})
def api_keys(request: HttpRequest, access: OrganizationAccess) -> HttpResponse:
    def key_form(data) -> ApiKeyForm:
        return ApiKeyForm(data, granter_role=access.role)

    if request.method == "POST":
        form = key_form(request.POST)
        if form.is_valid():
            try:
                api_key, key = services.api_key_create(
                    organization=access.organization,
                    name=form.cleaned_data["name"],
                    role=form.cleaned_data["role"],
                    expires_at=form.expires_at,
                    actor=access.actor(request),
                    actor_role=access.role,
                )
            except DomainError as error:
                add_domain_error(form, error)
            else:
                # The whole key is in this response and nowhere else: never cached, never stored.
                response = render_section(
                    request, access, "api_key_created", {"api_key": api_key, "key": key}
                )
                add_never_cache_headers(response)
                return response
        return back_with_refused(request, form, request.path, place="create", key="api_key")
    form = refused_form(request, "api_key", key_form) or key_form(None)
    rows = [
        {
            "api_key": api_key,
            "state": _api_key_state(api_key),
            "acts_as": _acts_as(api_key),
            "revocable": access.can("apikeys:write")
            and api_key.revoked_at is None
            and can_grant(access.role, api_key.role),
        }
        for api_key in selectors.api_keys(organization=access.organization)
    ]
    return render_section(request, access, "api_keys", {"form": form, "rows": rows})


def _acts_as(api_key: ApiKey) -> str | None:
    """What a live key's Role column must add: the role it acts with when its creator's current
    role holds it below its own, or that it acts with none (refused)."""
    if api_key.revoked_at is not None:
        return None
    acting = selectors.effective_role(api_key)
    if acting == api_key.role:
        return None
    return (
        f"acts as {Role(acting).label.lower()}"
        if acting
        else "refused: its creator's role no longer covers it"
    )


def _api_key_state(api_key: ApiKey) -> str:
    if api_key.revoked_at is not None:
        return "revoked"
    return "active" if api_key.is_active else "expired"


@organization_view(scopes={"POST": "apikeys:write"}, reload="tenants:api-keys")
def api_key_revoke(request: HttpRequest, access: OrganizationAccess, key_id: str) -> HttpResponse:
    api_key = get_object_or_404(ApiKey.objects, public_id=key_id)
    try:
        services.api_key_revoke(
            api_key=api_key, actor=access.actor(request), actor_role=access.role
        )
    except DomainError as error:
        notify(request, error.detail, place="keys", error=True)
    else:
        notify(request, f"The key {api_key.name} was revoked: it no longer works.", place="keys")
    return redirect(reverse("tenants:api-keys", args=[access.organization.public_id]) + "#keys")
