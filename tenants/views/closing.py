"""The organization's settings page, for its owners: closing the organization (what happens,
what is kept, what still stands in the way), confirmed by typing its name."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from foundation.errors import DomainError

from .. import services
from ..access import OrganizationAccess
from ..closing_checks import closing_refusals
from ..forms import CloseOrganizationForm, add_domain_error
from ..settings_panels import settings_panels
from .base import organization_view, render_section
from .feedback import back_with_refused, refused_form


@organization_view(scopes={"GET": "org:owner", "POST": "org:owner"})
def organization_settings(request: HttpRequest, access: OrganizationAccess) -> HttpResponse:
    refusals = closing_refusals(access.organization)
    if request.method == "POST":
        form = CloseOrganizationForm(request.POST)
        if form.is_valid():
            try:
                services.organization_close(
                    organization=access.organization,
                    actor=access.actor(request),
                    actor_role=access.role,
                    confirm_name=form.cleaned_data["confirm"],
                )
            except DomainError as error:
                # A check's refusal shows among the refusals (with where to act); any other
                # by the form.
                if error.extra.get("field") or not refusals:
                    add_domain_error(form, error)
            else:
                messages.success(request, f"{access.organization.name} is closed.")
                # 303: the organization this form was posted to is gone; home is read with GET.
                return HttpResponseRedirect(reverse("home"), status=303)
        return back_with_refused(request, form, request.path, place="close", key="close")
    form = refused_form(request, "close", CloseOrganizationForm) or CloseOrganizationForm()
    panels = [
        {"template": panel.template, "context": panel.context(access.organization)}
        for panel in settings_panels()
    ]
    context = {"form": form, "refusals": refusals, "panels": panels}
    return render_section(request, access, "settings", context)
