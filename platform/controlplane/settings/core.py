"""Django itself: apps, middleware, templates, auth, static files, e-mail."""

import ipaddress

from .environment import BASE_DIR, env


def _as_host_header(host: str) -> str:
    """A Host header carries an IPv6 address in brackets, but the downward API gives a pod's
    address bare (the chart adds ``$(POD_IP)``): bracket such an entry so it can match."""
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return host
    return f"[{host}]"


SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="insecure-local-only-key-never-use-in-production")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = [
    _as_host_header(host)
    for host in env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
]
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "controlplane.apps.SluiceAdminConfig",  # django.contrib.admin on Sluice's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",  # intcomma: numbers with thousands separators
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_celery_results",
    "foundation",
    "controlplane",
    "tenants",
    "clusters",
    "billing",
]

MIDDLEWARE = [
    # First: times each request through every other middleware (the /metrics histogram).
    "foundation.metrics.RequestMetricsMiddleware",
    "foundation.requestid.RequestIdMiddleware",
    "foundation.api.problems.ApiProblemMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "foundation.csp.ContentSecurityPolicyMiddleware",
]

# Sent on every response (foundation.csp). The web UI, the admin and the API docs need nothing
# beyond their own origin; images may be data: URIs (the admin's and Swagger UI's icons).
SLUICE_CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}

ROOT_URLCONF = "controlplane.urls"
WSGI_APPLICATION = "controlplane.wsgi.application"
ASGI_APPLICATION = "controlplane.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "controlplane.context_processors.sluice",
            ],
        },
    },
]

AUTH_USER_MODEL = "tenants.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = ["tenants.backends.ThrottledModelBackend"]
# Failed sign-ins, counted in Redis over the lockout window, per account and per client address:
# past either limit, sign-in is refused (even with the right password) for the window.
SLUICE_LOGIN_FAILURES_PER_ACCOUNT = env.int("SLUICE_LOGIN_FAILURES_PER_ACCOUNT", default=5)
SLUICE_LOGIN_FAILURES_PER_ADDRESS = env.int("SLUICE_LOGIN_FAILURES_PER_ADDRESS", default=50)
SLUICE_LOGIN_LOCKOUT_SECONDS = env.int("SLUICE_LOGIN_LOCKOUT_SECONDS", default=900)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Console by default: password-reset and invitation mails print in the web process log.
EMAIL_BACKEND = env.str(
    "DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
)
EMAIL_HOST = env.str("DJANGO_EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("DJANGO_EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("DJANGO_EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("DJANGO_EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("DJANGO_EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="Sluice <no-reply@sluice.local>")
