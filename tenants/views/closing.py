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
from .base import organization_view, render_section


@organization_view(scopes={"GET": "org:owner", "POST": "org:owner"})
def organization_settings(request: HttpRequest, access: OrganizationAccess) -> HttpResponse:
    form = CloseOrganizationForm(request.POST or None)
    status = 200
    refusal = None
    if request.method == "POST":
        if form.is_valid():
            try:
                services.organization_close(
                    organization=access.organization,
                    actor=access.actor(request),
                    actor_role=access.role,
                    confirm_name=form.cleaned_data["confirm"],
                )
            except DomainError as error:
                refusal, status = error, error.status
            else:
                messages.success(request, f"{access.organization.name} is closed.")
                # 303: the organization this form was posted to is gone; home is read with GET.
                return HttpResponseRedirect(reverse("home"), status=303)
        else:
            status = 400
    refusals = closing_refusals(access.organization)
    # A check's refusal shows among the refusals (with where to act); any other by the form.
    if refusal is not None and (refusal.extra.get("field") or not refusals):
        add_domain_error(form, refusal)
    return render_section(
        request, access, "settings", {"form": form, "refusals": refusals}, status=status
    )
