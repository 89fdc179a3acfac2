"""The organization's clusters (the list, the tiers and the create form) and a cluster's own
changes: its page, renaming, resizing, changing tier, retrying and deletion."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.vary import vary_on_headers

from foundation.errors import DomainError
from foundation.text import counted
from tenants.access import OrganizationAccess
from tenants.views.base import organization_view
from tenants.views.feedback import back_with_refused, notify, refused_form

from .. import presentation, selectors, services
from ..first_steps import first_steps
from ..forms import (
    ChangeTierForm,
    ClusterCreateForm,
    ClusterDeleteForm,
    RenameForm,
    ResizeForm,
    add_domain_error,
    explain,
)
from ..models import Cluster
from ..quota_use import quota_use
from ..tiers import capacity_units_for
from .base import (
    CONFIRM,
    READ,
    READ_WRITE,
    TRANSITIONAL_STATES,
    WRITE,
    back_to_form,
    confirm_page,
    is_htmx,
    live_cluster,
    live_cluster_or_none,
    render_page,
    tier_choices,
    to_cluster,
)
from .cluster_page import cluster_page, status_context


def _cluster_rows(access: OrganizationAccess) -> tuple[list[Cluster], bool]:
    clusters = list(selectors.clusters(organization=access.organization))
    return clusters, any(cluster.state in TRANSITIONAL_STATES for cluster in clusters)


@organization_view(scopes=READ_WRITE)
@vary_on_headers("HX-Request")  # the same URL answers htmx with a fragment
def cluster_list(request: HttpRequest, access: OrganizationAccess) -> HttpResponse:
    if request.method == "GET" and is_htmx(request):
        clusters, polling = _cluster_rows(access)
        return render(
            request,
            "clusters/_cluster_table.html",
            {"organization": access.organization, "clusters": clusters, "polling": polling},
        )
    tiers = selectors.catalog()
    regions = selectors.regions()

    def create_form(data) -> ClusterCreateForm:
        return ClusterCreateForm(
            data,
            tier_choices=tier_choices(tiers),
            region_choices=[(region, region) for region in regions],
        )

    if request.method == "POST":
        form = create_form(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                cluster, _operation = services.cluster_create(
                    organization=access.organization,
                    actor=access.actor(request),
                    name=data["name"],
                    tier_slug=data["type"],
                    region=data["region"],
                    capacity_units=data["capacity_units"],
                )
            except DomainError as error:
                add_domain_error(form, error)
            else:
                messages.success(request, f"Cluster {cluster.name} was requested.")
                return to_cluster(access, cluster)
        list_url = reverse("clusters:list", args=[access.organization.public_id])
        return back_with_refused(request, form, list_url, place="create", key="create_form")
    form = refused_form(request, "create_form", create_form) or create_form(None)
    clusters, polling = _cluster_rows(access)
    dedicated = [tier for tier in tiers if tier.is_dedicated]
    context = {
        "form": form,
        "first_steps": first_steps(organization=access.organization),
        "quota_use": quota_use(organization=access.organization),
        "clusters": clusters,
        "polling": polling,
        "tier_cards": [presentation.tier_card(tier) for tier in tiers],
        "regions": regions,
        "unit_range": (
            (
                min(tier.min_capacity_units for tier in dedicated),
                max(tier.max_capacity_units for tier in dedicated),
            )
            if dedicated
            else None
        ),
    }
    return render_page(request, access, "clusters/cluster_list.html", context)


@organization_view(scopes=READ)
@vary_on_headers("HX-Request")
def cluster_detail(request: HttpRequest, access: OrganizationAccess, cluster_id: str):
    cluster = live_cluster_or_none(access, cluster_id)
    if is_htmx(request):
        if cluster is None:
            return _cluster_gone(request, access, cluster_id)
        return render(request, "clusters/_cluster_poll.html", status_context(access, cluster))
    if cluster is None:
        raise Http404("No such cluster")
    return cluster_page(request, access, cluster)


def _cluster_gone(request: HttpRequest, access: OrganizationAccess, cluster_id: str):
    """The polled status of a cluster that no longer exists: send the page to the list."""
    deleted = selectors.deleted_cluster(organization=access.organization, public_id=cluster_id)
    if deleted is not None:
        messages.success(request, f"Cluster {deleted.name} was deleted.")
    response = HttpResponse(status=404)
    response["HX-Redirect"] = reverse("clusters:list", args=[access.organization.public_id])
    return response


def _change_cluster(
    request: HttpRequest,
    access: OrganizationAccess,
    cluster_id: str,
    *,
    form_key: str,
    form,
    change: Callable[[dict], dict],
) -> HttpResponse:
    """Run one of the cluster's changes (rename, resize, change tier) through the service; its
    outcome is shown in the card of the cluster's settings."""
    cluster = live_cluster(access, cluster_id)
    if form.is_valid():
        try:
            cluster, operation = services.cluster_update(
                cluster=cluster, actor=access.actor(request), **change(form.cleaned_data)
            )
        except DomainError as error:
            add_domain_error(form, error)
        else:
            if operation is None:
                notify(request, f"The cluster is now called {cluster.name}.", place="settings")
            else:
                notify(
                    request,
                    f"{cluster.name} is changing to {cluster.tier.name}, "
                    f"{counted(cluster.capacity_units, 'capacity unit')}: this page follows it.",
                    place="settings",
                )
            return to_cluster(access, cluster, "settings")
    return back_to_form(request, access, cluster, form, key=form_key)


@organization_view(scopes=WRITE, reload="clusters:detail#settings")
def cluster_rename(request: HttpRequest, access: OrganizationAccess, cluster_id: str):
    return _change_cluster(
        request,
        access,
        cluster_id,
        form_key="rename_form",
        form=RenameForm(request.POST, prefix="rename"),
        change=lambda data: {"name": data["name"]},
    )


@organization_view(scopes=CONFIRM)
def cluster_resize(request: HttpRequest, access: OrganizationAccess, cluster_id: str):
    """Resizing asks first: the form on the cluster's page leads (by redirect) to a page that
    shows the size now and after, and what the new size would cost, and posts the change."""
    if request.method == "POST" and request.POST.get("confirmed"):
        return _change_cluster(
            request,
            access,
            cluster_id,
            form_key="resize_form",
            form=ResizeForm(request.POST, prefix="resize"),
            change=lambda data: {"capacity_units": data["capacity_units"]},
        )
    cluster = live_cluster(access, cluster_id)
    asked = request.POST if request.method == "POST" else request.GET
    if not asked:  # the address alone, reloaded or typed: the form is on the cluster's page
        return to_cluster(access, cluster, "resize")
    form = ResizeForm(asked, prefix="resize")
    if form.is_valid():
        try:  # a size the tier does not offer is refused before asking
            units = capacity_units_for(cluster.tier, form.cleaned_data["capacity_units"])
        except DomainError as error:
            add_domain_error(form, error)
    if not form.is_valid():
        return back_to_form(request, access, cluster, form, key="resize_form")
    if request.method == "POST":
        return redirect(f"{request.path}?{urlencode({form.add_prefix('capacity_units'): units})}")
    return confirm_page(
        request,
        access,
        cluster,
        title=f"Resize {cluster.name} to {counted(units, 'capacity unit')}?",
        explanation=(
            f"{cluster.name} has {counted(cluster.capacity_units, 'capacity unit')} now; "
            f"its limits and its hourly price change with the size. The brokers are changed "
            "one at a time, so clients stay connected."
        ),
        action="Resize",
        danger=False,
        fields={form.add_prefix("capacity_units"): units, "confirmed": "1"},
        estimate_query=f"?type={cluster.tier.slug}",
    )


@organization_view(scopes=WRITE, reload="clusters:detail#settings")
def cluster_change_tier(request: HttpRequest, access: OrganizationAccess, cluster_id: str):
    return _change_cluster(
        request,
        access,
        cluster_id,
        form_key="tier_form",
        form=ChangeTierForm(
            request.POST, prefix="type", tier_choices=tier_choices(selectors.catalog())
        ),
        change=lambda data: {"tier_slug": data["type"], "capacity_units": data["capacity_units"]},
    )


@organization_view(scopes=WRITE, reload="clusters:detail")
def cluster_retry(request: HttpRequest, access: OrganizationAccess, cluster_id: str):
    cluster = live_cluster(access, cluster_id)
    try:
        services.cluster_retry(cluster=cluster, actor=access.actor(request))
    except DomainError as error:
        messages.error(request, explain(error))
    else:
        messages.success(request, f"Trying {cluster.name} again: this page follows it.")
    return to_cluster(access, cluster)


@organization_view(scopes=WRITE, reload="clusters:detail#delete")
def cluster_delete(request: HttpRequest, access: OrganizationAccess, cluster_id: str):
    cluster = live_cluster(access, cluster_id)
    form = ClusterDeleteForm(request.POST, prefix="delete", cluster_name=cluster.name)
    if not form.is_valid():
        return back_to_form(request, access, cluster, form, key="delete_form")
    try:
        services.cluster_delete(cluster=cluster, actor=access.actor(request))
    except DomainError as error:
        notify(request, explain(error), place="delete", error=True)
        return to_cluster(access, cluster, "delete")
    messages.success(request, f"Cluster {cluster.name} is being deleted.")
    return redirect("clusters:list", org=access.organization.public_id)
