"""The frame of every organization page of the web UI.

Every page under ``/orgs/<org>/`` is wrapped by ``organization_view``, the tenancy gate
(``tenants.access``) in the web UI's terms: anonymous visitors are sent to sign in, unknown
organizations and non-members get 404 (so an organization's existence is not revealed), a method
the page does not take 405, a member whose role lacks the method's scope a 403 page; the view
runs with the organization in scope. The tabs across the top are the ones the apps registered
(``tenants.navigation``) and the member's role may open.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse

from .. import navigation
from ..access import (
    MethodNotAllowed,
    NotAMember,
    OrganizationAccess,
    ScopeNotGranted,
    organization_access,
)
from ..scoping import tenant_scope


def organization_view(*, scopes: dict[str, str], reload: str = "") -> Callable:
    """Wrap a view of ``/orgs/<org>/…``. ``scopes`` maps each allowed HTTP method to the scope
    it needs. Unknown organizations and non-members get 404, members whose role lacks the scope
    get 403, and the view runs with the organization in scope, called as
    ``view(request, access, **kwargs)``.

    ``reload`` is the page (``"app:name#anchor"``) a submit-only route sends a GET to: the
    address bar of a result page may still show the route, and reloading it must land on the
    page, not on a 405."""
    allowed = dict(scopes)
    if "GET" in allowed:
        allowed.setdefault("HEAD", allowed["GET"])

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, org: str, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            try:
                access = organization_access(org=org, user=request.user)
            except NotAMember:
                raise Http404("No such organization") from None
            if reload and request.method in ("GET", "HEAD") and "GET" not in allowed:
                return redirect(_page_url(reload, org=org, **kwargs))
            with tenant_scope(access.organization):
                try:
                    access.require(request.method, allowed=set(allowed), scope_map=allowed)
                except MethodNotAllowed:
                    return HttpResponseNotAllowed(sorted(allowed))
                except ScopeNotGranted as refusal:
                    return render(
                        request,
                        "tenants/forbidden.html",
                        {"access": access, "needed": refusal.needed},
                        status=403,
                    )
                return view(request, access, **kwargs)

        # What the page lets each method do: the isolation walk checks every organization
        # route carries it.
        wrapper.organization_scopes = allowed
        wrapper.reloads_to = reload
        return wrapper

    return decorate


def _page_url(target: str, **kwargs: str) -> str:
    """``target``'s URL given the route's parameters: those it takes (the route's first ones,
    as a page's route is a prefix of its submit routes')."""
    name, _, anchor = target.partition("#")
    names = list(kwargs)
    while names:
        try:
            url = reverse(name, kwargs={key: kwargs[key] for key in names})
        except NoReverseMatch:
            names.pop()
            continue
        return f"{url}#{anchor}" if anchor else url
    raise NoReverseMatch(f"{name} takes none of {sorted(kwargs)}")


def organization_page_context(access: OrganizationAccess, section: str) -> dict:
    """What every organization page's frame needs: the organization, the caller's access and
    the section tabs the caller may open."""
    tabs = [
        {
            "key": tab.key,
            "label": tab.label,
            "url": reverse(tab.url_name, args=[access.organization.public_id]),
        }
        for tab in navigation.organization_tabs()
        if access.can(tab.scope)
    ]
    return {
        "access": access,
        "organization": access.organization,
        "tabs": tabs,
        "section": section,
    }


def render_section(
    request: HttpRequest,
    access: OrganizationAccess,
    section: str,
    context: dict,
    status: int = 200,
) -> HttpResponse:
    context = {**organization_page_context(access, section), **context}
    return render(request, f"tenants/org_{section}.html", context, status=status)


def back_to(access: OrganizationAccess, url_name: str) -> HttpResponse:
    return redirect(url_name, org=access.organization.public_id)
