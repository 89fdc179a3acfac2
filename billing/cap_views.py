"""The spend-caps page under the Billing tab: the organization's cap and its clusters', each
with this month so far against it and, when reached, what that does and how it lifts. Owners
and billing members set, change and remove them (audited by ``caps``); admins read them."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from clusters import selectors as cluster_selectors
from foundation.errors import DomainError
from tenants.access import OrganizationAccess
from tenants.forms import add_domain_error
from tenants.views.base import organization_page_context, organization_view
from tenants.views.feedback import back_with_refused, refused_form

from . import cap_presentation, caps, money
from .cap_forms import REMOVE, SET, CapForm

SCOPES = {"GET": "billing:read", "POST": "billing:write"}
# The cards a change's message is shown in, next to the form that made it.
NOTE_PLACES = ("organization", "clusters")


@organization_view(scopes=SCOPES)
def spend_caps(request: HttpRequest, access: OrganizationAccess) -> HttpResponse:
    organization = access.organization
    clusters = list(cluster_selectors.clusters(organization=organization).order_by("name"))
    choices = [(cluster.public_id, cluster.name) for cluster in clusters]
    capped = {
        cap.cluster.public_id for cap in caps.caps_of(organization=organization) if cap.cluster
    }

    def cap_form(data) -> CapForm:
        return CapForm(data, clusters=choices, capped=capped)

    if request.method == "POST":
        bound = cap_form(request.POST)
        if bound.is_valid():
            try:
                note = _change(organization, access.actor(request), bound)
            except DomainError as error:
                add_domain_error(bound, error)
            else:
                place = "organization" if bound.cluster_id is None else "clusters"
                messages.success(request, note, extra_tags=place)
                url = reverse("billing:caps", kwargs={"org": organization.public_id})
                return redirect(f"{url}#{place}-caps")
        return back_with_refused(request, bound, request.path, place=_anchor(bound), key="cap")
    bound = refused_form(request, "cap", cap_form)
    page = cap_presentation.caps_page(caps.caps_overview(organization=organization), clusters)
    forms = _forms(page, bound, clusters=choices, capped=capped)
    shown, notes = _notes(request)
    context = {
        **organization_page_context(access, "billing"),
        **page,
        "may_edit": access.can("billing:write"),
        "organization_form": forms.pop("organization"),
        "new_form": forms.pop("new", None),
        "notes": notes,
        "messages": shown,
    }
    return render(request, "billing/spend_caps.html", context)


def _anchor(form: CapForm) -> str:
    """Where on the page the form is: the organization's card, a capped cluster's row or the
    form adding a cluster's cap."""
    if form.place == "organization":
        return "organization-caps"
    return "new-cap" if form.place == "new" else f"cap-{form.cluster_id}"


def _change(organization, actor, form: CapForm) -> str:
    """Apply the form; the sentence that says what changed."""
    cluster = form.cluster_id
    whose = (
        "The organization's cap"
        if cluster is None
        else f"The cap of {dict(form.fields['cluster'].choices)[cluster]}"
    )
    if form.cleaned_data["action"] == REMOVE:
        caps.cap_remove(organization=organization, actor=actor, cluster_public_id=cluster)
        return f"{whose} is removed."
    cap = caps.cap_set(
        organization=organization,
        actor=actor,
        monthly_micros=form.cleaned_data["monthly_cap"],
        cluster_public_id=cluster,
    )
    amount = cap_presentation.usd_of_micros(cap.monthly_micros, exact=True)
    return f"{whose} is now {amount} a month."


def _forms(page: dict, bound: CapForm | None, **choices) -> dict[str, CapForm]:
    """A form per place on the page (the organization's card, each capped cluster's row, the
    one adding a cluster's cap), set to what is there; the refused one, bound, in its place.
    Each row's form is put in its row."""
    forms = {"organization": CapForm(initial=_initial(page["organization_cap"]), **choices)}
    for row in page["cluster_caps"]:
        forms[f"cluster-{row['status'].cluster.public_id}"] = CapForm(
            initial=_initial(row), **choices
        )
    uncapped = [(cluster.public_id, cluster.name) for cluster in page["uncapped_clusters"]]
    if uncapped:
        forms["new"] = CapForm(initial={"action": SET, "cluster": uncapped[0][0]}, **choices)
    if bound is not None:
        forms[bound.place] = bound
    if "new" in forms:  # offers only the clusters without a cap
        forms["new"].fields["cluster"].choices = uncapped
    for row in page["cluster_caps"]:
        row["form"] = forms.pop(f"cluster-{row['status'].cluster.public_id}")
    return forms


def _initial(row: dict | None) -> dict:
    if row is None:
        return {"action": SET}
    cap = row["status"].cap
    return {
        "action": SET,
        "cluster": cap.cluster.public_id if cap.cluster else "",
        "monthly_cap": money.dollars_exact(cap.monthly_micros),
    }


def _notes(request: HttpRequest) -> tuple[list, dict[str, list[str]]]:
    """The pending messages: those of a cap change go to the card of its form, the others to
    the top of the page as usual."""
    shown, notes = [], {place: [] for place in NOTE_PLACES}
    for message in messages.get_messages(request):
        if message.extra_tags in notes:
            notes[message.extra_tags].append(str(message))
        else:
            shown.append(message)
    return shown, notes
