"""A cluster's page: its status (polled while it changes), connection, topics, credentials, the
panels other apps contribute (``clusters.panels``), its activity, and the forms to change it.
A refused submission comes back here, its form showing what was typed and why it was refused."""

from __future__ import annotations

from collections.abc import Callable

from django.forms import Form
from django.http import HttpRequest, HttpResponse, QueryDict
from django.utils.cache import patch_vary_headers

from foundation.text import elapsed_label
from tenants.access import OrganizationAccess
from tenants.audit_display import event_changes
from tenants.views.feedback import refused_form

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


def topic_place(topic_name: str) -> str:
    """The anchor of a topic's row, where what a change of it made is shown."""
    return f"topic-{topic_name}"


def first_username(cluster: Cluster) -> str:
    """The snippets name the cluster's oldest live credential, or a placeholder without one."""
    credential = selectors.live_credentials(cluster=cluster).order_by("created_at", "id").first()
    return credential.username if credential else connection.PLACEHOLDER_USERNAME


def status_context(access: OrganizationAccess, cluster: Cluster) -> dict:
    operations = (
        selectors.operations(organization=access.organization)
        .filter(cluster=cluster)
        .select_related("audit_event")
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
        "operations": [
            {
                "operation": operation,
                "target": operation.audit_event.target_name if operation.audit_event else "",
                "changes": event_changes(operation.audit_event) if operation.audit_event else [],
                "took": elapsed_label(
                    (operation.finished_at - operation.created_at).total_seconds()
                )
                if operation.finished_at
                else "",
            }
            for operation in operations
        ],
    }


def _form_builders(cluster: Cluster) -> dict[str, Callable[[QueryDict | None], Form]]:
    """The page's forms, each built unbound or from what a refused submission had typed."""
    tiers = tier_choices(selectors.catalog())
    return {
        "topic_form": lambda data: TopicCreateForm(data, prefix="topic"),
        "credential_form": lambda data: CredentialCreateForm(data, prefix="credential"),
        "rename_form": lambda data: RenameForm(
            data, prefix="rename", initial={"name": cluster.name}
        ),
        "resize_form": lambda data: ResizeForm(
            data, prefix="resize", initial={"capacity_units": cluster.capacity_units}
        ),
        "tier_form": lambda data: ChangeTierForm(
            data, prefix="type", tier_choices=tiers, initial={"type": cluster.tier.slug}
        ),
        "delete_form": lambda data: ClusterDeleteForm(
            data, prefix="delete", cluster_name=cluster.name
        ),
    }


def cluster_page(
    request: HttpRequest, access: OrganizationAccess, cluster: Cluster
) -> HttpResponse:
    """The cluster's page, showing again the form a submission just had refused, if any
    (``tenants.views.feedback``)."""
    forms = {
        key: refused_form(request, key, build) or build(None)
        for key, build in _form_builders(cluster).items()
    }
    topics = [
        {
            "topic": topic,
            "kafka_name": connection.kafka_topic_name(cluster, topic.name),
            "retention": presentation.duration_label(topic.retention_ms),
            "place": topic_place(topic.name),
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
    response = render_page(request, access, "clusters/cluster_detail.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response
