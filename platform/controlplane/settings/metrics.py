"""The control plane's own /metrics (foundation.metrics): who may read it."""

from .environment import env

# The bearer token Prometheus sends (``authorization: {credentials: …}`` in its scrape
# config). Empty: anyone who reaches /metrics reads it, which production allows only when
# SLUICE_METRICS_PUBLIC says so (the pods' network is private and no ingress routes /metrics).
SLUICE_METRICS_TOKEN = env.str("SLUICE_METRICS_TOKEN", default="")
SLUICE_METRICS_PUBLIC = env.bool("SLUICE_METRICS_PUBLIC", default=False)
