"""The self-service web UI of the tenancy layer: sign-up, organizations, members, invitations,
API keys and the audit log.

Every page under ``/orgs/<org>/`` is wrapped by ``organization_view``, which resolves the
organization, answers 404 to anyone who is not a member (so its existence is not revealed),
checks the member's role grants the scope the HTTP method needs, and runs the view with the
organization in scope. Views call services and selectors only; a ``DomainError`` becomes a form
error or a page message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from foundation.errors import DomainError

from . import selectors, services
from .audit import Actor
from .forms import (
    ApiKeyForm,
    AuditFilterForm,
    InvitationForm,
    LoginForm,
    MemberRoleForm,
    OrganizationForm,
    SignupForm,
    SignupPasswordForm,
    add_domain_error,
    grantable_role_choices,
)
from .models import ApiKey, Invitation, Membership, Organization
from .roles import Role, can_grant, scopes_of
from .scoping import tenant_scope

AUDIT_EVENTS_PER_PAGE = 25

# The organization page's sections, in order, and the scope each needs to be shown.
SECTIONS = [
    ("members", "Members", "members:read", "tenants:members"),
    ("invitations", "Invitations", "invitations:read", "tenants:invitations"),
    ("api_keys", "API keys", "apikeys:read", "tenants:api-keys"),
    ("audit", "Audit log", "audit:read", "tenants:audit"),
]


# Tenancy ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrganizationAccess:
    """The organization in the URL and the requesting user's membership of it."""

    organization: Organization
    membership: Membership

    @property
    def role(self) -> str:
        return self.membership.role

    @property
    def scopes(self) -> frozenset[str]:
        return scopes_of(self.membership.role)

    def can(self, scope: str) -> bool:
        return scope in self.scopes

    def actor(self, request: HttpRequest) -> Actor:
        return Actor(user=request.user)


def organization_view(*, scopes: dict[str, str]) -> Callable:
    """Wrap a view of ``/orgs/<org>/…``. ``scopes`` maps each allowed HTTP method to the scope
    it needs. Unknown organizations and non-members get 404, members whose role lacks the scope
    get 403, and the view runs with the organization in scope, called as
    ``view(request, access, **kwargs)``."""
    allowed = dict(scopes)
    if "GET" in allowed:
        allowed.setdefault("HEAD", allowed["GET"])

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, org: str, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            organization = Organization.objects.filter(public_id=org).first()
            if organization is None:
                raise Http404("No such organization")
            with tenant_scope(organization):
                membership = selectors.membership_of(user=request.user, organization=organization)
                if membership is None:
                    raise Http404("No such organization")
                if request.method not in allowed:
                    return HttpResponseNotAllowed(sorted(allowed))
                access = OrganizationAccess(organization=organization, membership=membership)
                needed = allowed[request.method]
                if not access.can(needed):
                    return render(
                        request,
                        "tenants/forbidden.html",
                        {"access": access, "needed": needed},
                        status=403,
                    )
                return view(request, access, **kwargs)

        return wrapper

    return decorate


def organization_page_context(access: OrganizationAccess, section: str) -> dict:
    """What every organization page's frame needs: the organization, the caller's access and
    the section tabs the caller may open."""
    tabs = [
        {"key": key, "label": label, "url": reverse(url_name, args=[access.organization.public_id])}
        for key, label, scope, url_name in SECTIONS
        if access.can(scope)
    ]
    return {
        "access": access,
        "organization": access.organization,
        "tabs": tabs,
        "section": section,
    }


def _render_section(
    request: HttpRequest,
    access: OrganizationAccess,
    section: str,
    context: dict,
    status: int = 200,
) -> HttpResponse:
    context = {**organization_page_context(access, section), **context}
    return render(request, f"tenants/org_{section}.html", context, status=status)


def _back_to(access: OrganizationAccess, url_name: str) -> HttpResponse:
    return redirect(url_name, org=access.organization.public_id)


# Accounts -----------------------------------------------------------------------------------


def _safe_next(request: HttpRequest) -> str:
    return _safe_url(request, request.POST.get("next") or request.GET.get("next") or "")


def _safe_url(request: HttpRequest, target: str) -> str:
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return ""


class LoginView(auth_views.LoginView):
    """Django's sign-in page; while sign-in is locked out it answers 429 with the reason."""

    authentication_form = LoginForm

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.locked_out:
            response.status_code = 429
            response["Retry-After"] = str(self.request.login_locked_for)
        return response


@require_http_methods(["GET", "HEAD", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """Step one: the address (and a name). The page that follows is the same whether the address
    has an account or not; the mail tells its owner which."""
    next_url = _safe_next(request)
    if request.user.is_authenticated:
        return redirect(next_url or "home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        email = services.signup_request(
            email=data["email"],
            first_name=data["first_name"],
            last_name=data["last_name"],
            next_url=next_url,
            site_url=request.build_absolute_uri("/"),
        )
        return render(request, "registration/signup_sent.html", {"email": email})
    return render(request, "registration/signup.html", {"form": form, "next": next_url})


@require_http_methods(["GET", "HEAD", "POST"])
def signup_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """Step two, from the mailed link: choose a password; the account is created and signed in."""
    try:
        details = services.signup_details(token=token)
    except DomainError as error:
        context = {"error": error.detail}
        return render(request, "registration/signup_confirm.html", context, status=error.status)
    form = SignupPasswordForm(request.POST or None, details=details)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.user_signup(
                email=details["email"],
                password=form.cleaned_data["password1"],
                first_name=details["first_name"],
                last_name=details["last_name"],
            )
        except DomainError as error:
            add_domain_error(form, error)
        else:
            login(request, user)
            next_url = _safe_url(request, details["next"])
            welcome = "Welcome to Sluice."
            messages.success(request, welcome if next_url else f"{welcome} Create an organization.")
            return redirect(next_url or "home")
    context = {"form": form, "email": details["email"]}
    return render(request, "registration/signup_confirm.html", context)


# Members ------------------------------------------------------------------------------------


@organization_view(scopes={"GET": "members:read"})
def members(request: HttpRequest, access: OrganizationAccess) -> HttpResponse:
    return _members_page(request, access)


def _members_page(
    request: HttpRequest, access: OrganizationAccess, leave_error: str = "", status: int = 200
) -> HttpResponse:
    may_manage = access.can("members:write")
    rows = [
        {
            "membership": membership,
            "is_me": membership.pk == access.membership.pk,
            # Only a hint for what to show: the services decide.
            "manageable": may_manage
            and membership.pk != access.membership.pk
            and can_grant(access.role, membership.role),
        }
        for membership in selectors.members(organization=access.organization)
    ]
    context = {
        "rows": rows,
        "role_choices": grantable_role_choices(access.role),
        "leave_error": leave_error,
    }
    return _render_section(request, access, "members", context, status=status)


@organization_view(scopes={"POST": "members:write"})
def member_change_role(
    request: HttpRequest, access: OrganizationAccess, member_id: str
) -> HttpResponse:
    membership = get_object_or_404(Membership.objects.select_related("user"), public_id=member_id)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the listed roles.")
        return _back_to(access, "tenants:members")
    try:
        services.membership_change_role(
            membership=membership,
            role=form.cleaned_data["role"],
            actor=access.actor(request),
            actor_role=access.role,
        )
    except DomainError as error:
        messages.error(request, error.detail)
    else:
        role = Role(form.cleaned_data["role"]).label
        messages.success(request, f"{membership.user.email} is now {role.lower()}.")
    return _back_to(access, "tenants:members")


@organization_view(scopes={"POST": "members:write"})
def member_remove(request: HttpRequest, access: OrganizationAccess, member_id: str) -> HttpResponse:
    membership = get_object_or_404(Membership.objects.select_related("user"), public_id=member_id)
    try:
        services.membership_remove(
            membership=membership, actor=access.actor(request), actor_role=access.role
        )
    except DomainError as error:
        messages.error(request, error.detail)
        return _back_to(access, "tenants:members")
    if membership.pk == access.membership.pk:
        messages.success(request, f"You left {access.organization.name}.")
        return redirect("home")
    messages.success(request, f"{membership.user.email} was removed.")
    return _back_to(access, "tenants:members")


# Leaving needs no more than membership: any member may leave (the last owner excepted).
@organization_view(scopes={"POST": "org:read"})
def leave(request: HttpRequest, access: OrganizationAccess) -> HttpResponse:
    try:
        services.membership_remove(
            membership=access.membership, actor=access.actor(request), actor_role=access.role
        )
    except DomainError as error:
        return _members_page(request, access, leave_error=error.detail, status=error.status)
    messages.success(request, f"You left {access.organization.name}.")
    return redirect("home")


# Invitations --------------------------------------------------------------------------------


@organization_view(scopes={"GET": "invitations:read", "POST": "invitations:write"})
def invitations(request: HttpRequest, access: OrganizationAccess) -> HttpResponse:
    form = InvitationForm(request.POST or None, granter_role=access.role)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                invitation, _token = services.invitation_create(
                    organization=access.organization,
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                    actor=access.actor(request),
                    actor_role=access.role,
                    accept_url_base=request.build_absolute_uri("/invitations/"),
                )
            except DomainError as error:
                add_domain_error(form, error)
            else:
                messages.success(request, f"Invitation sent to {invitation.email}.")
                return _back_to(access, "tenants:invitations")
        status = 400
    return _render_section(
        request,
        access,
        "invitations",
        {"form": form, "invitations": selectors.invitations(organization=access.organization)},
        status=status,
    )


@organization_view(scopes={"POST": "invitations:write"})
def invitation_revoke(
    request: HttpRequest, access: OrganizationAccess, invitation_id: str
) -> HttpResponse:
    invitation = get_object_or_404(Invitation.objects, public_id=invitation_id)
    try:
        services.invitation_revoke(invitation=invitation, actor=access.actor(request))
    except DomainError as error:
        messages.error(request, error.detail)
    else:
        messages.success(request, f"The invitation to {invitation.email} was revoked.")
    return _back_to(access, "tenants:invitations")


def _pending_invitation(token: str, user) -> Invitation:
    return selectors.invitation_for_token(token=token, user=user)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def invitation_respond(request: HttpRequest, token: str) -> HttpResponse:
    """The link mailed with an invitation: see it, then accept or decline it."""
    try:
        if request.method == "POST":
            return _answer_invitation(request, token)
        invitation = _pending_invitation(token, request.user)
    except DomainError as error:
        context = {"error": error.detail, "error_code": error.code}
        return render(request, "tenants/invitation.html", context, status=error.status)
    return render(request, "tenants/invitation.html", {"invitation": invitation})


def _answer_invitation(request: HttpRequest, token: str) -> HttpResponse:
    if request.POST.get("answer") == "accept":
        membership = services.invitation_accept(token=token, user=request.user)
        organization = membership.organization
        messages.success(
            request,
            f"You joined {organization.name} as {Role(membership.role).label.lower()}.",
        )
        return redirect("tenants:members", org=organization.public_id)
    if request.POST.get("answer") == "decline":
        invitation = services.invitation_decline(token=token, user=request.user)
        messages.success(request, f"You declined the invitation to {invitation.organization.name}.")
        return redirect("home")
    invitation = _pending_invitation(token, request.user)
    return render(
        request,
        "tenants/invitation.html",
        {"invitation": invitation, "error": "Choose accept or decline."},
        status=400,
    )


# API keys -----------------------------------------------------------------------------------


@organization_view(scopes={"GET": "apikeys:read", "POST": "apikeys:write"})
def api_keys(request: HttpRequest, access: OrganizationAccess) -> HttpResponse:
    form = ApiKeyForm(request.POST or None, granter_role=access.role)
    status = 200
    if request.method == "POST":
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
                response = _render_section(
                    request, access, "api_key_created", {"api_key": api_key, "key": key}
                )
                add_never_cache_headers(response)
                return response
        status = 400
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
    return _render_section(request, access, "api_keys", {"form": form, "rows": rows}, status=status)


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


@organization_view(scopes={"POST": "apikeys:write"})
def api_key_revoke(request: HttpRequest, access: OrganizationAccess, key_id: str) -> HttpResponse:
    api_key = get_object_or_404(ApiKey.objects, public_id=key_id)
    try:
        services.api_key_revoke(
            api_key=api_key, actor=access.actor(request), actor_role=access.role
        )
    except DomainError as error:
        messages.error(request, error.detail)
    else:
        messages.success(request, f"The key {api_key.name} was revoked: it no longer works.")
    return _back_to(access, "tenants:api-keys")


# Audit log ----------------------------------------------------------------------------------


@organization_view(scopes={"GET": "audit:read"})
def audit(request: HttpRequest, access: OrganizationAccess) -> HttpResponse:
    events = selectors.audit_events(organization=access.organization)
    form = AuditFilterForm(
        request.GET,
        actions=list(events.order_by("action").values_list("action", flat=True).distinct()),
        actors=list(
            events.order_by("actor_label").values_list("actor_label", flat=True).distinct()
        ),
    )
    if form.is_valid():
        if form.cleaned_data["action"]:
            events = events.filter(action=form.cleaned_data["action"])
        if form.cleaned_data["actor"]:
            events = events.filter(actor_label=form.cleaned_data["actor"])
    else:
        events = events.none()
    page = Paginator(events.order_by("-created_at", "-id"), AUDIT_EVENTS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    rows = [{"event": event, "changes": _changes(event)} for event in page]
    return _render_section(request, access, "audit", {"form": form, "page": page, "rows": rows})


def _changes(event) -> list[tuple[str, object, object]]:
    """(field, before, after) for each field the event names, for a compact display."""
    before, after = event.before or {}, event.after or {}
    return [
        (name, _readable(before.get(name)), _readable(after.get(name)))
        for name in {**before, **after}
    ]


def _readable(value):
    # Snapshots keep times as ISO 8601 strings; show them as the rest of the page does.
    if isinstance(value, str):
        try:
            moment = parse_datetime(value)
        except ValueError:
            moment = None
        if moment is not None:
            return date_format(moment, "Y-m-d H:i")
    return value


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def home(request: HttpRequest) -> HttpResponse:
    """The user's organizations, and a form to create one."""
    form = OrganizationForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                organization = services.organization_create(
                    name=form.cleaned_data["name"], owner=request.user
                )
            except DomainError as error:
                add_domain_error(form, error)
            else:
                messages.success(request, f"{organization.name} is ready: you are its owner.")
                return redirect("tenants:members", org=organization.public_id)
        status = 400
    organizations = selectors.organizations_for_user(user=request.user)
    return render(
        request,
        "tenants/home.html",
        {"organizations": organizations, "form": form},
        status=status,
    )
