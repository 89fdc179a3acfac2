"""The operators' fleet dashboard (an admin page, wired into the admin site by the control
plane) and its inline retry. Thin: the reads are ``clusters.fleet``'s and the contributed
sections', the retry is ``operator_actions``'."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from foundation.errors import Conflict

from . import fleet
from .cell_health import cells_health
from .models import Cluster
from .operator_actions import operator_retry
from .presentation import duration_label


def dashboard(request):
    if not request.user.has_perm("clusters.view_cluster"):
        raise PermissionDenied
    now = timezone.now()
    capacity = fleet.cell_capacity()
    cells = [row.cell for row in capacity]
    facts = [(fact, fact.values(cells)) for fact in fleet.cell_facts()]
    health = cells_health(cells)
    context = {
        **admin.site.each_context(request),
        "title": "Fleet dashboard",
        "now": now,
        "states": fleet.clusters_by_state(),
        "stuck": fleet.stuck_clusters(now=now),
        "stuck_after": duration_label(fleet.stuck_after() // timedelta(milliseconds=1)),
        "failed": fleet.failed_clusters(),
        "may_retry": request.user.has_perm("clusters.change_cluster"),
        "lag": fleet.reconcile_lag(),
        "cells": [
            {
                "capacity": row,
                "health": health[row.cell.pk],
                "facts": [values.get(row.cell.pk, ("—", False)) for _, values in facts],
            }
            for row in capacity
        ],
        "fact_titles": [fact.title for fact, _ in facts],
        "failed_operations": fleet.recent_failed_operations(),
        "sections": [(section, section.context()) for section in fleet.fleet_sections()],
    }
    return TemplateResponse(request, "admin/fleet.html", context)


def retry(request, public_id: str):
    """POST: retry one failed cluster, then back to the dashboard's failed clusters (a GET,
    a reload of this address, just goes back there)."""
    back = reverse("admin:fleet") + "#failed"
    if request.method != "POST":
        return redirect(back)
    if not request.user.has_perm("clusters.change_cluster"):
        raise PermissionDenied
    cluster = get_object_or_404(
        Cluster.unscoped_all_tenants.select_related("organization"), public_id=public_id
    )
    try:
        operation = operator_retry(operator=request.user, cluster=cluster)
    except Conflict as refusal:
        messages.error(request, f"{cluster.name} ({cluster.public_id}): {refusal}")
    else:
        messages.success(
            request,
            f"Retrying {cluster.name} ({cluster.public_id}): operation {operation.public_id}.",
        )
    return redirect(back)
