"""Production: refuses to start without a secret key, a secrets key ring, a PostgreSQL database,
Redis and the host names it serves, and with the development defaults (debug, mail that is only
printed, the simulated data plane), a Stripe key without its webhook secret, customers'
webhooks let into private networks, or /metrics open without being told so, naming what is
missing or wrong."""

from django.core.exceptions import ImproperlyConfigured

from .environment import env, require

require(
    "DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "DJANGO_ALLOWED_HOSTS", "SLUICE_SECRETS_KEYS"
)

from .base import *  # noqa: E402

if DEBUG:
    raise ImproperlyConfigured(
        "DJANGO_DEBUG must be off in production: debug pages show settings and code to anyone"
    )
DEBUG = False

# Backends that deliver no mail: invitations, sign-up links and password resets would be lost.
UNDELIVERING_EMAIL_BACKENDS = {
    f"django.core.mail.backends.{name}.EmailBackend"
    for name in ("console", "locmem", "dummy", "filebased")
}
if EMAIL_BACKEND in UNDELIVERING_EMAIL_BACKENDS:
    raise ImproperlyConfigured(
        f"DJANGO_EMAIL_BACKEND is {EMAIL_BACKEND}, which delivers no mail: set it to"
        " django.core.mail.backends.smtp.EmailBackend (with DJANGO_EMAIL_HOST) or another"
        " backend that sends"
    )
if SLUICE_DATAPLANE_DRIVER == "simulated":
    raise ImproperlyConfigured(
        "SLUICE_DATAPLANE_DRIVER is 'simulated', which runs no Kafka: set it to 'kubernetes'"
    )

if len(SECRET_KEY) < 50 or SECRET_KEY.startswith("insecure"):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is too weak: use at least 50 random characters"
        ' (python -c "import secrets; print(secrets.token_urlsafe(64))")'
    )
if DEVELOPMENT_SECRETS_KEY in SLUICE_SECRETS_KEYS:
    raise ImproperlyConfigured(
        "SLUICE_SECRETS_KEYS holds the public development key: generate keys of your own"
    )
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL in production")
if not REDIS_URL.startswith(("redis://", "rediss://")):
    raise ImproperlyConfigured("REDIS_URL must be a redis:// or rediss:// URL")
if "*" in ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must list host names, not '*'")
# Stripe is optional (without a key nothing is pushed), and a test-mode key is allowed: a
# staging installation runs these settings against Stripe's test mode (STRIPE_LIVE_MODE says
# which). But invoices pushed without their webhook would never be seen paid.
if STRIPE_API_KEY and not STRIPE_WEBHOOK_SECRET:
    raise ImproperlyConfigured(
        "STRIPE_WEBHOOK_SECRET is required with STRIPE_API_KEY: without Stripe's events Sluice"
        " never learns that an invoice was paid"
    )
if not STRIPE_API_BASE.startswith("https://"):
    raise ImproperlyConfigured("STRIPE_API_BASE must be an https:// URL in production")
# A usage export's download link lets whoever holds it read the object: never over plain HTTP.
if SLUICE_EXPORT_ENDPOINT_URL and not SLUICE_EXPORT_ENDPOINT_URL.startswith("https://"):
    raise ImproperlyConfigured("SLUICE_EXPORT_ENDPOINT_URL must be an https:// URL in production")
# A customer's webhook must not reach the installation's own network (SSRF).
if SLUICE_WEBHOOK_ALLOWED_PRIVATE_NETWORKS:
    raise ImproperlyConfigured(
        "SLUICE_WEBHOOK_ALLOWED_PRIVATE_NETWORKS must be empty in production: customers' webhooks"
        " would reach the installation's own network"
    )
# /metrics tells how busy the installation is and how far behind: behind a token, or public
# only when the operator says so (a private pod network that no ingress routes /metrics to).
if not SLUICE_METRICS_TOKEN and not SLUICE_METRICS_PUBLIC:
    raise ImproperlyConfigured(
        "SLUICE_METRICS_TOKEN is required (the bearer token Prometheus sends to /metrics), or"
        " SLUICE_METRICS_PUBLIC=true when only a private network reaches /metrics"
    )
SLUICE_WEBHOOK_ALLOW_HTTP = env.bool("SLUICE_WEBHOOK_ALLOW_HTTP", default=False)

# Static files are collected into the image at build time and served by the web process.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "whitenoise.middleware.WhiteNoiseMiddleware",
)
STORAGES["staticfiles"] = {
    "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage",
}
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
# Probes and Prometheus call the pods over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
