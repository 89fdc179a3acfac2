"""The ``client.properties`` download of a cluster: what a Java client (or anything that reads
Java properties) needs, with the oldest credential's username and a placeholder password (a
password is shown only once, when it is made or rotated)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse

from tenants.access import OrganizationAccess
from tenants.views.base import organization_view

from .. import connection
from .base import READ, live_cluster
from .cluster_page import first_username


@organization_view(scopes=READ)
def client_properties(request: HttpRequest, access: OrganizationAccess, cluster_id: str):
    cluster = live_cluster(access, cluster_id)
    if not cluster.bootstrap_servers:
        raise Http404("The cluster has no bootstrap address yet")
    response = HttpResponse(
        connection.client_properties(cluster, first_username(cluster)),
        content_type="text/plain; charset=utf-8",
    )
    response["Content-Disposition"] = 'attachment; filename="client.properties"'
    return response
