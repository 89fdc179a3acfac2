from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from tenants import selectors as tenant_selectors
from tenants import services as tenant_services
from tenants.forms import OrganizationForm, add_domain_error

from . import health
from .errors import DomainError


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and serving; nothing else is checked."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to take traffic: the database and the broker answer. 503 names what does not."""
    checks = health.readiness()
    failing = sorted(name for name, result in checks.items() if result != "ok")
    if failing:
        return JsonResponse(
            {"status": "unavailable", "failing": failing, "checks": checks}, status=503
        )
    return JsonResponse({"status": "ok", "checks": checks})


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def home(request: HttpRequest) -> HttpResponse:
    """The user's organizations, and a form to create one."""
    form = OrganizationForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                organization = tenant_services.organization_create(
                    name=form.cleaned_data["name"], owner=request.user
                )
            except DomainError as error:
                add_domain_error(form, error)
            else:
                messages.success(request, f"{organization.name} is ready: you are its owner.")
                return redirect("tenants:members", org=organization.public_id)
        status = 400
    organizations = tenant_selectors.organizations_for_user(user=request.user)
    return render(
        request,
        "controlplane/home.html",
        {"organizations": organizations, "form": form},
        status=status,
    )
