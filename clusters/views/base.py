"""What every page of the clusters web UI shares: the scope each method needs, rendering in the
organization's frame, and finding the cluster, topic or credential named in the URL.

Every view is wrapped by ``tenants.views.base.organization_view``: non-members get 404, reading
needs ``clusters:read`` and changing ``clusters:write``, and every object named in the URL is
looked up through the tenant-scoped managers, so another organization's ids are 404. Views call
the services and selectors; a ``DomainError`` becomes a form error or a page message."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from tenants.access import OrganizationAccess
from tenants.views.base import organization_page_context
from tenants.views.feedback import back_with_refused

from .. import selectors
from ..models import Cluster, ClusterState, Credential, Tier, Topic

READ = {"GET": "clusters:read"}
READ_WRITE = {"GET": "clusters:read", "POST": "clusters:write"}
WRITE = {"POST": "clusters:write"}
# A confirmation page is only useful to whoever may then confirm.
CONFIRM = {"GET": "clusters:write", "POST": "clusters:write"}

# While the data plane is still working, the pages poll for the outcome.
TRANSITIONAL_STATES = {
    ClusterState.REQUESTED,
    ClusterState.PROVISIONING,
    ClusterState.UPDATING,
    ClusterState.DELETING,
}


def render_page(
    request: HttpRequest,
    access: OrganizationAccess,
    template: str,
    context: dict,
    status: int = 200,
) -> HttpResponse:
    context = {
        **organization_page_context(access, "clusters"),
        "can_write": access.can("clusters:write"),
        **context,
    }
    return render(request, template, context, status=status)


def confirm_page(
    request: HttpRequest,
    access: OrganizationAccess,
    cluster: Cluster,
    *,
    title: str,
    explanation: str,
    action: str,
    danger: bool,
    fields: dict | None = None,
    estimate_query: str = "",
) -> HttpResponse:
    """The page that asks before a change that cannot be taken back or that changes what the
    cluster costs; it posts ``fields`` to its own URL, and with ``estimate_query`` shows what
    the change would cost (the estimator's fragment, given the posted fields)."""
    context = {
        "cluster": cluster,
        "title": title,
        "explanation": explanation,
        "action": action,
        "danger": danger,
        "fields": sorted((fields or {}).items()),
        "estimate_query": estimate_query,
    }
    return render_page(request, access, "clusters/confirm.html", context)


def is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def cluster_url(access: OrganizationAccess, cluster: Cluster) -> str:
    return reverse("clusters:detail", args=[access.organization.public_id, cluster.public_id])


def to_cluster(access: OrganizationAccess, cluster: Cluster, anchor: str = "") -> HttpResponse:
    url = cluster_url(access, cluster)
    return redirect(f"{url}#{anchor}" if anchor else url)


def back_to_form(
    request: HttpRequest, access: OrganizationAccess, cluster: Cluster, form, *, key: str
) -> HttpResponse:
    """Back to the cluster's page, scrolled to the refused form (its anchor is its prefix),
    which shows again with its errors."""
    return back_with_refused(
        request, form, cluster_url(access, cluster), place=form.prefix, key=key
    )


def live_cluster_or_none(access: OrganizationAccess, cluster_id: str) -> Cluster | None:
    return selectors.live_cluster(organization=access.organization, public_id=cluster_id)


def live_cluster(access: OrganizationAccess, cluster_id: str) -> Cluster:
    cluster = live_cluster_or_none(access, cluster_id)
    if cluster is None:
        raise Http404("No such cluster")
    return cluster


def live_topic(cluster: Cluster, topic_name: str) -> Topic:
    return get_object_or_404(selectors.live_topics(cluster=cluster), name=topic_name)


def live_credential(cluster: Cluster, credential_id: str) -> Credential:
    return get_object_or_404(selectors.live_credentials(cluster=cluster), public_id=credential_id)


def tier_choices(tiers: list[Tier]) -> list[tuple[str, str]]:
    return [(tier.slug, tier.name) for tier in tiers]
