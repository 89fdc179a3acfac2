"""A cluster's page: its status (polled while it changes), connection, topics, credentials, the
panels other apps contribute (``clusters.panels``), its activity, and the forms to change it.
The views that refuse a submission show it again here, with the refused form bound."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers

from tenants.access import OrganizationAccess

from .. import connection, presentation, selectors, snippets
from ..forms import (
    ChangeTierForm,
    ClusterDeleteForm,
    CredentialCreateForm,
    RenameForm,
    ResizeForm,
    TopicCreateForm,
)
from ..models import Cluster
from ..panels import cluster_panels
from .base import TRANSITIONAL_STATES, render_page, tier_choices

RECENT_OPERATIONS = 10


def first_username(cluster: Cluster) -> str:
    """The snippets name the cluster's oldest live credential, or a placeholder without one."""
    credential = selectors.live_credentials(cluster=cluster).order_by("created_at", "id").first()
    return credential.username if credential else connection.PLACEHOLDER_USERNAME


def status_context(access: OrganizationAccess, cluster: Cluster) -> dict:
    operations = (
        selectors.operations(organization=access.organization)
        .filter(cluster=cluster)
        .order_by("-created_at", "-id")[:RECENT_OPERATIONS]
    )
    return {
        "organization": access.organization,
        "cluster": cluster,
        "can_write": access.can("clusters:write"),
        # Who may raise a spend cap, to be shown the way to it from a throttled cluster.
        "can_change_caps": access.can("billing:write"),
        "polling": cluster.state in TRANSITIONAL_STATES,
        "connection": connection.connection_details(cluster),
        "snippets": snippets.snippets(cluster, first_username(cluster)),
        "operations": list(operations),
    }


def cluster_page(
    request: HttpRequest,
    access: OrganizationAccess,
    cluster: Cluster,
    *,
    bound: dict | None = None,
    grow_errors: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    """The cluster's page; ``bound`` holds the forms of a refused submission, to show again."""
    bound = bound or {}
    tiers = selectors.catalog()
    forms = {
        "topic_form": TopicCreateForm(prefix="topic"),
        "credential_form": CredentialCreateForm(prefix="credential"),
        "rename_form": RenameForm(prefix="rename", initial={"name": cluster.name}),
        "resize_form": ResizeForm(
            prefix="resize", initial={"capacity_units": cluster.capacity_units}
        ),
        "tier_form": ChangeTierForm(
            prefix="type",
            tier_choices=tier_choices(tiers),
            initial={"type": cluster.tier.slug},
        ),
        "delete_form": ClusterDeleteForm(prefix="delete", cluster_name=cluster.name),
        **bound,
    }
    grow_errors = grow_errors or {}
    topics = [
        {
            "topic": topic,
            "kafka_name": connection.kafka_topic_name(cluster, topic.name),
            "retention": presentation.duration_label(topic.retention_ms),
            "grow_error": grow_errors.get(topic.name, ""),
        }
        for topic in selectors.live_topics(cluster=cluster)
    ]
    credentials = [
        {"credential": credential, "quotas": presentation.credential_quotas(credential)}
        for credential in selectors.live_credentials(cluster=cluster)
    ]
    context = {
        **status_context(access, cluster),
        **forms,
        "tier": presentation.tier_card(cluster.tier),
        "being_deleted": cluster.delete_requested_at is not None,
        "topics": topics,
        "credentials": credentials,
        "max_retention": presentation.hours_label(cluster.tier.max_retention_hours),
        "panels": [
            {"template": panel.template, "context": panel.context(cluster)}
            for panel in cluster_panels()
            if access.can(panel.scope)
        ],
    }
    response = render_page(request, access, "clusters/cluster_detail.html", context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response
