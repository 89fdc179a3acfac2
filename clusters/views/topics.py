"""A cluster's topics: creating one, adding partitions, and deleting one (after a confirmation
page)."""

from __future__ import annotations

from django.http import HttpRequest
from django.shortcuts import redirect

from foundation.errors import DomainError
from foundation.text import counted
from tenants.access import OrganizationAccess
from tenants.views.base import organization_view
from tenants.views.feedback import notify

from .. import connection, services
from ..forms import PartitionsForm, TopicCreateForm, add_domain_error, explain
from .base import (
    CONFIRM,
    WRITE,
    back_to_form,
    cluster_url,
    confirm_page,
    live_cluster,
    live_topic,
    to_cluster,
)
from .cluster_page import topic_place
from .topic_page import SETTINGS_PLACE, topic_url


@organization_view(scopes=WRITE, reload="clusters:detail#topics")
def topic_create(request: HttpRequest, access: OrganizationAccess, cluster_id: str):
    cluster = live_cluster(access, cluster_id)
    form = TopicCreateForm(request.POST, prefix="topic")
    if form.is_valid():
        try:
            topic, _operation = services.topic_create(
                cluster=cluster,
                actor=access.actor(request),
                name=form.cleaned_data["name"],
                partitions=form.cleaned_data["partitions"],
                retention_ms=form.retention_ms,
                cleanup_policy=form.cleaned_data["cleanup_policy"],
            )
        except DomainError as error:
            add_domain_error(form, error)
        else:
            notify(request, f"Topic {topic.name} was created.", place="topics")
            return to_cluster(access, cluster, "topics")
    return back_to_form(request, access, cluster, form, key="topic_form")


@organization_view(scopes=WRITE, reload="clusters:detail#topics")
def topic_partitions(
    request: HttpRequest, access: OrganizationAccess, cluster_id: str, topic_name: str
):
    cluster = live_cluster(access, cluster_id)
    topic = live_topic(cluster, topic_name)
    # The outcome is shown where the partitions were typed: the topic's own page (which posts
    # ``back=topic``) or the topic's row on the cluster's page.
    if request.POST.get("back") == "topic":
        place, page = SETTINGS_PLACE, topic_url(access, cluster, topic)
    else:
        place, page = topic_place(topic.name), cluster_url(access, cluster)
    back = f"{page}#{place}"
    form = PartitionsForm(request.POST)
    if not form.is_valid():
        problem = "; ".join(str(e) for errors in form.errors.values() for e in errors)
        notify(request, problem, place=place, error=True)
        return redirect(back)
    try:
        topic, _operation = services.topic_update(
            topic=topic, actor=access.actor(request), partitions=form.cleaned_data["partitions"]
        )
    except DomainError as error:
        notify(request, explain(error), place=place, error=True)
    else:
        notify(
            request,
            f"Topic {topic.name} now has {counted(topic.partitions, 'partition')}.",
            place=place,
        )
    return redirect(back)


@organization_view(scopes=CONFIRM)
def topic_delete(
    request: HttpRequest, access: OrganizationAccess, cluster_id: str, topic_name: str
):
    cluster = live_cluster(access, cluster_id)
    topic = live_topic(cluster, topic_name)
    if request.method == "GET":
        return confirm_page(
            request,
            access,
            cluster,
            title=f"Delete topic {topic.name}?",
            explanation=(
                f"The topic {connection.kafka_topic_name(cluster, topic.name)} and every "
                "message in it "
                f"({topic.partitions} partitions) are deleted from {cluster.name}. "
                "This cannot be undone."
            ),
            action="Delete topic",
            danger=True,
        )
    try:
        services.topic_delete(topic=topic, actor=access.actor(request))
    except DomainError as error:
        notify(request, explain(error), place="topics", error=True)
    else:
        notify(request, f"Topic {topic.name} was deleted.", place="topics")
    return to_cluster(access, cluster, "topics")
