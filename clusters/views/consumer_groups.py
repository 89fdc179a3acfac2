"""A cluster's consumer groups in the console: the groups with their state, members and lag
(read live from the cluster's Kafka), and resetting an inactive group's offsets."""

from __future__ import annotations

from datetime import UTC

from django.http import Http404, HttpRequest
from django.shortcuts import redirect
from django.urls import reverse

from foundation.errors import ConsumerGroupsUnavailable, DomainError, KafkaUnreachable, NotFound
from tenants.access import OrganizationAccess
from tenants.views.base import organization_view
from tenants.views.feedback import back_with_refused, notify, refused_form

from .. import consumer_groups, services
from ..forms import OffsetResetForm, add_domain_error
from .base import READ, READ_WRITE, live_cluster, render_page


@organization_view(scopes=READ)
def group_list(request: HttpRequest, access: OrganizationAccess, cluster_id: str):
    cluster = live_cluster(access, cluster_id)
    context = {"cluster": cluster, "groups": [], "unavailable": ""}
    try:
        context["groups"] = [
            consumer_groups.get_group(cluster, summary.name)
            for summary in consumer_groups.list_groups(cluster)
        ]
    except (ConsumerGroupsUnavailable, KafkaUnreachable) as error:
        context["unavailable"] = error.detail
    return render_page(request, access, "clusters/consumer_groups.html", context)


@organization_view(scopes=READ_WRITE)
def group_detail(request: HttpRequest, access: OrganizationAccess, cluster_id: str, group: str):
    cluster = live_cluster(access, cluster_id)
    here = reverse(
        "clusters:consumer-group", args=[access.organization.public_id, cluster.public_id, group]
    )
    if request.method == "POST":
        # Answered by a redirect either way (post/redirect/get): a refused form is kept for the
        # next GET of the page, scrolled to it.
        form = OffsetResetForm(request.POST, prefix="reset")
        if form.is_valid():
            try:
                moves = services.consumer_group_reset_offsets(
                    cluster=cluster,
                    actor=access.actor(request),
                    group=group,
                    to=form.cleaned_data["to"],
                    timestamp=_utc(form.cleaned_data["timestamp"])
                    if form.cleaned_data["to"] == "timestamp"
                    else None,
                    topic=form.cleaned_data["topic"] or None,
                )
            except DomainError as error:
                add_domain_error(form, error)
            else:
                notify(
                    request,
                    f"The offsets of {group} were reset on {len(moves)} partition(s).",
                    place="reset",
                )
                return redirect(f"{here}#reset")
        return back_with_refused(request, form, here, place="reset", key="reset_form")
    form = refused_form(
        request, "reset_form", lambda data: OffsetResetForm(data, prefix="reset")
    ) or OffsetResetForm(prefix="reset")
    context = {"cluster": cluster, "group": None, "unavailable": "", "form": form}
    try:
        context["group"] = consumer_groups.get_group(cluster, group)
    except NotFound as error:
        raise Http404(error.detail) from None
    except (ConsumerGroupsUnavailable, KafkaUnreachable) as error:
        context["unavailable"] = error.detail
    return render_page(request, access, "clusters/consumer_group.html", context)


def _utc(value):
    # The form's times are read as UTC, as the page says.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value
