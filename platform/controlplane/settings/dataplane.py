"""The data plane Sluice drives: the simulated one (in-process, the default) or Kubernetes."""

from django.core.exceptions import ImproperlyConfigured

from .environment import env, secrets_keys

DATAPLANE_DRIVERS = ("simulated", "kubernetes")
SLUICE_DATAPLANE_DRIVER = env.str("SLUICE_DATAPLANE_DRIVER", default="simulated")
if SLUICE_DATAPLANE_DRIVER not in DATAPLANE_DRIVERS:
    raise ImproperlyConfigured(
        f"SLUICE_DATAPLANE_DRIVER must be one of {', '.join(DATAPLANE_DRIVERS)}"
        f" (got {SLUICE_DATAPLANE_DRIVER!r})"
    )
# Path to a kubeconfig for the kubernetes driver, for cells registered without credentials of
# their own (development; clusters.cell_credentials); empty means in-cluster configuration.
SLUICE_KUBECONFIG = env.str("SLUICE_KUBECONFIG", default="")
# The ServiceAccount Sluice acts as in its cells (deploy/dataplane/): each dedicated cluster's
# namespace binds it the ClusterRole sluice-tenant. Change both only with those manifests.
SLUICE_CONTROL_PLANE_ACCOUNT_NAMESPACE = env.str(
    "SLUICE_CONTROL_PLANE_ACCOUNT_NAMESPACE", default="sluice-system"
)
SLUICE_CONTROL_PLANE_ACCOUNT_NAME = env.str(
    "SLUICE_CONTROL_PLANE_ACCOUNT_NAME", default="sluice-control-plane"
)
# Seconds to wait for one answer of a cell's Kubernetes API before the reconcile gives up (and
# is retried with backoff).
SLUICE_KUBERNETES_TIMEOUT_SECONDS = env.float("SLUICE_KUBERNETES_TIMEOUT_SECONDS", default=30.0)
# How long a reconcile watches for Strimzi's topic and user operators to report on what it just
# applied before it ends pending and looks again later (0: never wait).
SLUICE_RECONCILE_STATUS_WAIT_SECONDS = env.float(
    "SLUICE_RECONCILE_STATUS_WAIT_SECONDS", default=2.0
)
# A bound on each admin request Sluice's own principals make to a cluster's Kafka (consumer
# groups are read while a page or an API call waits).
SLUICE_KAFKA_ADMIN_TIMEOUT_SECONDS = env.float("SLUICE_KAFKA_ADMIN_TIMEOUT_SECONDS", default=10.0)

# The Kafka version new clusters get (a version the cells' Strimzi operator supports).
SLUICE_KAFKA_VERSION = env.str("SLUICE_KAFKA_VERSION", default="4.1.0")

# The rates a throttled cluster's principals get on a shared Kafka (a spend cap reached): small,
# never zero, so clients slow down rather than fail, and data can still be read out.
SLUICE_THROTTLE_PRODUCER_BYTES_PER_SECOND = env.int(
    "SLUICE_THROTTLE_PRODUCER_BYTES_PER_SECOND", default=1024
)
SLUICE_THROTTLE_CONSUMER_BYTES_PER_SECOND = env.int(
    "SLUICE_THROTTLE_CONSUMER_BYTES_PER_SECOND", default=65_536
)
SLUICE_THROTTLE_CONTROLLER_MUTATIONS_PER_SECOND = env.float(
    "SLUICE_THROTTLE_CONTROLLER_MUTATIONS_PER_SECOND", default=0.1
)

# Per-organization defaults; operators override them per organization in the admin.
SLUICE_DEFAULT_MAX_CLUSTERS = env.int("SLUICE_DEFAULT_MAX_CLUSTERS", default=10)
SLUICE_DEFAULT_MAX_PARTITIONS = env.int("SLUICE_DEFAULT_MAX_PARTITIONS", default=10_000)
SLUICE_DEFAULT_MAX_CREDENTIALS = env.int("SLUICE_DEFAULT_MAX_CREDENTIALS", default=200)

# The key ring sealing secrets Sluice must read back (Kafka credential passwords, which the
# reconciler writes into the data plane; foundation.secretbox): Fernet keys, comma-separated,
# newest first. Its own keys, never DJANGO_SECRET_KEY. Local installations and tests use a fixed
# development key, which is public; production requires the variable and refuses that key.
DEVELOPMENT_SECRETS_KEY = "c2x1aWNlOiBkZXZlbG9wbWVudCBvbmx5LCBwdWJsaWM="
SLUICE_SECRETS_KEYS = secrets_keys(env.str("SLUICE_SECRETS_KEYS", default=DEVELOPMENT_SECRETS_KEY))

# The simulated data plane: seconds until what it was asked for turns Ready.
SLUICE_SIMULATED_SERVERLESS_READY_SECONDS = env.float(
    "SLUICE_SIMULATED_SERVERLESS_READY_SECONDS", default=0.0
)
SLUICE_SIMULATED_DEDICATED_READY_SECONDS = env.float(
    "SLUICE_SIMULATED_DEDICATED_READY_SECONDS", default=20.0
)

# The operators' fleet dashboard: a cluster requested, provisioning or updating for longer than
# this is shown as stuck; the health probes (each cell's API server and Prometheus, the Celery
# workers) wait at most the timeout, and their answers are reused for the cache's seconds.
SLUICE_FLEET_STUCK_AFTER_SECONDS = env.int("SLUICE_FLEET_STUCK_AFTER_SECONDS", default=900)
SLUICE_FLEET_PROBE_TIMEOUT_SECONDS = env.float("SLUICE_FLEET_PROBE_TIMEOUT_SECONDS", default=2.0)
SLUICE_FLEET_HEALTH_CACHE_SECONDS = env.int("SLUICE_FLEET_HEALTH_CACHE_SECONDS", default=30)
