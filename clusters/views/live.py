"""The live metrics fragment of a cluster's page and of a topic's page, fetched by htmx when
the page loads and every minute after (``clusters.live_metrics`` reads them)."""

from __future__ import annotations

from django.http import HttpRequest
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from tenants.access import OrganizationAccess
from tenants.views.base import organization_view

from .. import connection, live_metrics
from .base import READ, live_cluster, live_topic


@never_cache
@organization_view(scopes=READ)
def cluster_metrics(request: HttpRequest, access: OrganizationAccess, cluster_id: str):
    cluster = live_cluster(access, cluster_id)
    return render(request, "clusters/_live_metrics.html", live_metrics.live_panel(cluster))


@never_cache
@organization_view(scopes=READ)
def topic_metrics(
    request: HttpRequest, access: OrganizationAccess, cluster_id: str, topic_name: str
):
    cluster = live_cluster(access, cluster_id)
    topic = live_topic(cluster, topic_name)
    panel = live_metrics.live_panel(cluster, topic=connection.kafka_topic_name(cluster, topic.name))
    return render(request, "clusters/_live_metrics.html", panel)
