"""What an operator does to a tenant's cluster from the admin: retry a failed one, delete one.
Each goes through the same service a tenant's request does (the lifecycle, the reconciler, the
organization's audit trail, where the operator is the actor), inside the cluster's tenant
scope, and is also logged in the admin's own history (LogEntry)."""

from __future__ import annotations

from django.contrib.admin.models import CHANGE, LogEntry

from tenants.audit import Actor
from tenants.scoping import tenant_scope

from . import services
from .models import Cluster, Operation


def operator_retry(*, operator, cluster: Cluster) -> Operation:
    """Retry a failed cluster (refused with Conflict when it is not failed)."""
    with tenant_scope(cluster.organization):
        operation = services.cluster_retry(cluster=cluster, actor=Actor(user=operator))
    _log(operator, cluster, f"Retried through the reconciler ({operation.public_id}).")
    return operation


def operator_delete(*, operator, cluster: Cluster) -> Operation:
    """Delete a cluster the way its owners would: the reconciler removes everything it holds
    in the data plane before the cluster is marked deleted; the row stays for billing."""
    with tenant_scope(cluster.organization):
        operation = services.cluster_delete(cluster=cluster, actor=Actor(user=operator))
    _log(operator, cluster, f"Deletion requested through the reconciler ({operation.public_id}).")
    return operation


def _log(operator, cluster: Cluster, message: str) -> None:
    LogEntry.objects.log_actions(
        user_id=operator.pk,
        queryset=[cluster],
        action_flag=CHANGE,
        change_message=message,
        single_object=True,
    )
