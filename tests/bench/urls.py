"""The real URLconf plus the floor the cluster list is measured against: a bare Django view
that authenticates nothing and returns the same rows straight from ``.values()``. Served only
by the benchmarks' web server (SLUICE_ROOT_URLCONF), never by the product."""

from django.http import JsonResponse
from django.urls import path

from clusters.models import Cluster
from controlplane.urls import urlpatterns as real_urlpatterns

# The columns behind the API's cluster fields, joins included (type and region).
BARE_FIELDS = (
    "public_id",
    "name",
    "tier__slug",
    "cell__region",
    "capacity_units",
    "kafka_version",
    "state",
    "generation",
    "observed_generation",
    "bootstrap_servers",
    "conditions",
    "created_at",
    "updated_at",
)
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


def bare_cluster_list(request, org):
    try:
        limit = min(MAX_PAGE_SIZE, max(1, int(request.GET.get("limit", DEFAULT_PAGE_SIZE))))
    except ValueError:
        limit = DEFAULT_PAGE_SIZE
    rows = (
        Cluster.unscoped_all_tenants.filter(organization__public_id=org, deleted_at__isnull=True)
        .order_by("-created_at", "-id")
        .values(*BARE_FIELDS)[:limit]
    )
    return JsonResponse({"results": list(rows)})


BARE_LIST_PATH = "bench/bare/orgs/{org}/clusters/"

urlpatterns = [
    path("bench/bare/orgs/<str:org>/clusters/", bare_cluster_list, name="bench-bare-clusters"),
    *real_urlpatterns,
]
