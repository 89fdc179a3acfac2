"""Billing's panels on a cluster's page: the last 24 hours of its usage, by hour, per
dimension, with the tier's limit (``templates/billing/_cluster_usage.html``), and the tier
recommendation (``templates/billing/_cluster_recommendation.html``), and what the cluster has
cost this month so far (``templates/billing/_cluster_month_to_date.html``)."""

from __future__ import annotations

from clusters.models import TIME_DIMENSIONS, Cluster
from clusters.panels import ClusterPanel, register_cluster_panel

from . import costs, selectors
from .presentation import recommendation_panel, usage_row, usd
from .recommendation import recommendation_for


def cluster_usage_panel(cluster: Cluster) -> dict:
    """The cluster's usage, from the same selector as the API's usage endpoint. A time
    dimension shows when the cluster has some in the window: a Serverless cluster never has
    cluster-hours, a Standard one never capacity-unit-hours, and a row of zeros would say it
    might."""
    usage = selectors.cluster_usage(
        cluster=cluster, window=selectors.usage_window(granularity="hour")
    )
    shown = [
        dimension
        for dimension in usage.dimensions
        if dimension.dimension not in TIME_DIMENSIONS
        or any(bucket.quantity for bucket in dimension.buckets)
    ]
    return {
        "rows": [usage_row(dimension) for dimension in shown],
        "start": usage.start,
        "end": usage.end,
    }


def cluster_recommendation_panel(cluster: Cluster) -> dict:
    """The recommendation the API's endpoint answers, as the page shows it."""
    return recommendation_panel(recommendation_for(cluster=cluster))


def cluster_month_to_date_panel(cluster: Cluster) -> dict:
    """The cluster's row of the Billing tab's month so far: the same selector, the same
    cents as the draft invoice's lines."""
    cost = costs.cluster_month_to_date(cluster=cluster)
    return {
        "charged": bool(cost.rows),
        "total": usd(cost.amount_cents),
        "estimated": cost.estimated,
    }


def register() -> None:
    # Every role has usage:read: any member who sees the cluster sees its usage.
    register_cluster_panel(
        ClusterPanel(
            key="usage",
            template="billing/_cluster_usage.html",
            scope="usage:read",
            context=cluster_usage_panel,
            position=10,
        )
    )
    # Money: the roles that read the Billing tab and its costs.
    register_cluster_panel(
        ClusterPanel(
            key="month-to-date",
            template="billing/_cluster_month_to_date.html",
            scope="billing:read",
            context=cluster_month_to_date_panel,
            position=15,
        )
    )
    # As its API: any member who may read the cluster.
    register_cluster_panel(
        ClusterPanel(
            key="recommendation",
            template="billing/_cluster_recommendation.html",
            scope="clusters:read",
            context=cluster_recommendation_panel,
            position=20,
        )
    )
