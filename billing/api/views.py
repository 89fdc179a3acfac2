from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from clusters import selectors as cluster_selectors
from foundation.api.validation import validated_data
from tenants.api.base import OrganizationScopedView

from .. import selectors
from . import serializers as s

# Any member may read usage (every role has usage:read).
USAGE_SCOPES = {"GET": "usage:read", "HEAD": "usage:read", "OPTIONS": "usage:read"}

QUERY_PARAMETERS = [
    OpenApiParameter(
        "granularity",
        str,
        enum=list(selectors.GRANULARITIES),
        default="hour",
        description="Bucket length: a UTC hour, or a UTC day (24 hours)",
    ),
    OpenApiParameter(
        "dimension",
        str,
        many=True,
        explode=True,
        enum=list(selectors.DIMENSIONS),
        description="Repeat it, or give a comma-separated list; all dimensions by default",
    ),
    OpenApiParameter(
        "start",
        OpenApiTypes.DATETIME,
        description="RFC 3339, with its offset; floored to a bucket boundary. Default: `end` "
        "less 24 hours (hour) or 30 days (day)",
    ),
    OpenApiParameter(
        "end",
        OpenApiTypes.DATETIME,
        description="RFC 3339, exclusive; raised to a bucket boundary. Default: the end of the "
        "current bucket. At most 31 days after `start` by hour, 400 days by day",
    ),
]

DESCRIPTION = (
    "\n\nEvery bucket of `[start, end)` is listed, 0 where nothing was used. `quantity` is in "
    "the dimension's `unit`, with adjustments (usage found after its hour was invoiced) folded "
    "into the bucket of the hour they correct; `adjustment` is that part. `complete` is true "
    "once every hour the cluster lived in the bucket is recorded and final for metering. An "
    "invalid query is a 400 `validation` problem with `errors` on `granularity`, `dimension`, "
    "`start` or `end` (`end` also for an empty or too long range)."
)


class _UsageView(OrganizationScopedView):
    abstract = True
    scope_map = USAGE_SCOPES

    def _query(self) -> dict:
        return validated_data(s.UsageQuerySerializer, self.request.query_params)


class OrganizationUsageView(_UsageView):
    """Usage of all the organization's clusters together, per dimension and bucket."""

    @extend_schema(
        parameters=QUERY_PARAMETERS,
        responses=s.UsageSerializer,
        description="Usage of all the organization's clusters together (deleted ones "
        "included), per dimension and bucket. `limit_per_bucket` is null: tier limits bind "
        "each cluster on its own." + DESCRIPTION,
    )
    def get(self, request, org):
        query = self._query()
        usage = selectors.organization_usage(
            organization=self.organization, window=query["window"], dimensions=query["dimension"]
        )
        return Response(s.UsageSerializer(usage).data)


class ClusterUsageView(_UsageView):
    """Usage of one cluster, per dimension and bucket, with its tier's limit per bucket."""

    @extend_schema(
        parameters=QUERY_PARAMETERS,
        responses=s.UsageSerializer,
        description="Usage of one cluster, per dimension and bucket, with the most its tier "
        "(times its capacity units) allows per bucket (`limit_per_bucket`)." + DESCRIPTION,
    )
    def get(self, request, org, cluster):
        found = cluster_selectors.live_cluster(organization=self.organization, public_id=cluster)
        if found is None:
            raise NotFound()
        query = self._query()
        usage = selectors.cluster_usage(
            cluster=found, window=query["window"], dimensions=query["dimension"]
        )
        return Response(s.UsageSerializer(usage).data)
