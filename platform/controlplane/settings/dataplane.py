"""The data plane Sluice drives: the simulated one (in-process, the default) or Kubernetes."""

from django.core.exceptions import ImproperlyConfigured

from .environment import env

DATAPLANE_DRIVERS = ("simulated", "kubernetes")
SLUICE_DATAPLANE_DRIVER = env.str("SLUICE_DATAPLANE_DRIVER", default="simulated")
if SLUICE_DATAPLANE_DRIVER not in DATAPLANE_DRIVERS:
    raise ImproperlyConfigured(
        f"SLUICE_DATAPLANE_DRIVER must be one of {', '.join(DATAPLANE_DRIVERS)}"
        f" (got {SLUICE_DATAPLANE_DRIVER!r})"
    )
# Path to a kubeconfig for the kubernetes driver; empty means in-cluster configuration.
SLUICE_KUBECONFIG = env.str("SLUICE_KUBECONFIG", default="")
