"""Account pages of the web UI: sign-in, the two steps of sign-up, answering an invitation, and
the home page (the user's organizations, and a form to create one)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from foundation.errors import DomainError

from .. import navigation, selectors, services
from ..forms import LoginForm, OrganizationForm, SignupForm, SignupPasswordForm, add_domain_error
from ..models import Invitation
from ..roles import Role
from .feedback import back_with_refused, refused_form

# The session key of the address a sign-up just mailed (the page after it shows it).
SIGNUP_SENT_TO = "signup_sent_to"


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
        # Redirected, so that reloading the answer neither resubmits nor mails again.
        request.session[SIGNUP_SENT_TO] = email
        return redirect("tenants:signup-sent")
    return render(request, "registration/signup.html", {"form": form, "next": next_url})


@require_http_methods(["GET", "HEAD"])
def signup_sent(request: HttpRequest) -> HttpResponse:
    """Where a sign-up lands: which address the link went to (this browser's own sign-up)."""
    email = request.session.get(SIGNUP_SENT_TO)
    if not email:
        return redirect("tenants:signup")
    return render(request, "registration/signup_sent.html", {"email": email})


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


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def home(request: HttpRequest) -> HttpResponse:
    """The user's organizations, and a form to create one. A new organization opens on its
    first tab (the clusters, with the first steps)."""
    if request.method == "POST":
        form = OrganizationForm(request.POST)
        if form.is_valid():
            try:
                organization = services.organization_create(
                    name=form.cleaned_data["name"], owner=request.user
                )
            except DomainError as error:
                add_domain_error(form, error)
            else:
                messages.success(request, f"{organization.name} is ready: you are its owner.")
                first_tab = navigation.organization_tabs()[0].url_name
                return redirect(first_tab, org=organization.public_id)
        return back_with_refused(request, form, request.path, place="create", key="organization")
    form = refused_form(request, "organization", OrganizationForm) or OrganizationForm()
    organizations = selectors.organizations_for_user(user=request.user)
    return render(request, "tenants/home.html", {"organizations": organizations, "form": form})
