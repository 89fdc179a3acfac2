"""A topic's page: its partitions (with the form to add some), replication, retention, cleanup
policy, every config a tenant may set with its value or Kafka's default (with the form that
changes them, for those who may), and its live size and traffic (the ``topic-live-metrics``
fragment, loaded by htmx)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from foundation.errors import DomainError
from tenants.access import OrganizationAccess
from tenants.views.base import organization_view
from tenants.views.feedback import back_with_refused, notify, refused_form

from .. import connection, presentation, services
from ..forms import TopicSettingsForm, add_domain_error
from ..models import Cluster, Topic
from ..validation import TOPIC_CONFIGS
from .base import READ, WRITE, live_cluster, live_topic, render_page

# The anchor of the topic page's settings card, where what a change made is shown.
SETTINGS_PLACE = "topic-settings"

# What Kafka uses for a config the topic does not set (Kafka 4.1's broker defaults).
KAFKA_DEFAULTS = {
    "compression.type": "producer",
    "max.message.bytes": "1048588",
    "message.timestamp.type": "CreateTime",
    "retention.bytes": "-1",
    "delete.retention.ms": "86400000",
    "min.compaction.lag.ms": "0",
    "max.compaction.lag.ms": "9223372036854775807",
    "segment.ms": "604800000",
}


@organization_view(scopes=READ)
def topic_detail(
    request: HttpRequest, access: OrganizationAccess, cluster_id: str, topic_name: str
):
    cluster = live_cluster(access, cluster_id)
    topic = live_topic(cluster, topic_name)
    configs = [
        {"name": name, "value": topic.configs.get(name), "default": KAFKA_DEFAULTS[name]}
        for name in TOPIC_CONFIGS
    ]
    context = {
        "cluster": cluster,
        "topic": topic,
        "kafka_name": connection.kafka_topic_name(cluster, topic.name),
        "retention": presentation.duration_label(topic.retention_ms),
        "max_retention": presentation.hours_label(cluster.tier.max_retention_hours),
        "configs": configs,
        "being_deleted": cluster.delete_requested_at is not None,
        "settings_form": refused_form(request, SETTINGS_PLACE, lambda data: _form(topic, data))
        or _form(topic),
        "place": SETTINGS_PLACE,
    }
    return render_page(request, access, "clusters/topic_detail.html", context)


@organization_view(scopes=WRITE, reload=f"clusters:topic-detail#{SETTINGS_PLACE}")
def topic_settings(
    request: HttpRequest, access: OrganizationAccess, cluster_id: str, topic_name: str
):
    cluster = live_cluster(access, cluster_id)
    topic = live_topic(cluster, topic_name)
    form = _form(topic, request.POST)
    if form.is_valid():
        try:
            topic, operation = services.topic_update(
                topic=topic,
                actor=access.actor(request),
                retention_ms=form.retention_ms,
                cleanup_policy=form.cleaned_data["cleanup_policy"],
                configs=form.configs,
            )
        except DomainError as error:
            add_domain_error(form, error)
        else:
            outcome = (
                f"Topic {topic.name}'s settings are saved."
                if operation
                else f"Nothing was changed: those are topic {topic.name}'s settings already."
            )
            notify(request, outcome, place=SETTINGS_PLACE)
            return to_topic(access, cluster, topic)
    return back_with_refused(request, form, topic_url(access, cluster, topic), place=SETTINGS_PLACE)


def _form(topic: Topic, data=None) -> TopicSettingsForm:
    return TopicSettingsForm(data, initial=TopicSettingsForm.initial_of(topic))


def topic_url(access: OrganizationAccess, cluster: Cluster, topic: Topic) -> str:
    return reverse(
        "clusters:topic-detail",
        args=[access.organization.public_id, cluster.public_id, topic.name],
    )


def to_topic(access: OrganizationAccess, cluster: Cluster, topic: Topic) -> HttpResponse:
    return redirect(f"{topic_url(access, cluster, topic)}#{SETTINGS_PLACE}")
