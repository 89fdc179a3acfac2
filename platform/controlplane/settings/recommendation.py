"""The tier recommendation: how much room a tier must leave above a cluster's busiest hour."""

from django.core.exceptions import ImproperlyConfigured

from .environment import env

# A tier fits a cluster when its limits are at least the cluster's peaks (ingress, egress,
# partitions, storage) plus this percentage: a cluster running at its tier's limits is throttled.
SLUICE_RECOMMENDATION_HEADROOM_PERCENT = env.int(
    "SLUICE_RECOMMENDATION_HEADROOM_PERCENT", default=20
)
if SLUICE_RECOMMENDATION_HEADROOM_PERCENT < 0:
    raise ImproperlyConfigured("SLUICE_RECOMMENDATION_HEADROOM_PERCENT is a percentage from 0 up")
