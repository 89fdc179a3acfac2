"""Settings come from the environment: embedded defaults for `make run`, and a production mode
that refuses to start on a missing or wrong value, naming it."""

import json
import re

import pytest

from tests.support.processes import clean_environment, run_python

SETUP = "import json, django; django.setup(); from django.conf import settings; "

GOOD_PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "controlplane.settings.production",
    "DJANGO_SECRET_KEY": "k" * 30 + "-production-secret-key-for-tests-0123456789",
    "DATABASE_URL": "postgres://sluice:secret@db.internal:5432/sluice",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "DJANGO_ALLOWED_HOSTS": "sluice.example.com",
    "SLUICE_SECRETS_KEYS": "cHJvZHVjdGlvbi1zZWNyZXRzLWtleS1mb3ItdGVzdHM=",
    "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    "SLUICE_DATAPLANE_DRIVER": "kubernetes",
    "SLUICE_METRICS_TOKEN": "metrics-scrape-token-for-tests",
}


def start(env: dict[str, str], code: str = "print('started')"):
    return run_python(SETUP + code, env=clean_environment(**env))


def test_embedded_defaults_need_no_server(tmp_path):
    result = start(
        {"DJANGO_SETTINGS_MODULE": "controlplane.settings.local", "SLUICE_DATA_DIR": str(tmp_path)},
        "print(json.dumps({'db': settings.DATABASES['default']['ENGINE'], "
        "'name': str(settings.DATABASES['default']['NAME']), "
        "'broker': settings.CELERY_BROKER_URL, 'results': settings.CELERY_RESULT_BACKEND, "
        "'driver': settings.SLUICE_DATAPLANE_DRIVER, 'debug': settings.DEBUG}))",
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found == {
        "db": "django.db.backends.sqlite3",
        "name": str(tmp_path / "sluice.sqlite3"),
        "broker": "filesystem://",
        "results": "django-db",
        "driver": "simulated",
        "debug": True,
    }
    assert (tmp_path / "broker" / "queue").is_dir()


def test_database_and_redis_urls_select_postgres_and_redis(tmp_path):
    result = start(
        {
            "DJANGO_SETTINGS_MODULE": "controlplane.settings.local",
            "SLUICE_DATA_DIR": str(tmp_path),
            "DATABASE_URL": "postgres://u:p@127.0.0.1:5999/sluice",
            "REDIS_URL": "redis://127.0.0.1:6999/0",
        },
        "d = settings.DATABASES['default']; "
        "print(d['ENGINE'], d['NAME'], d['PORT'], settings.CELERY_BROKER_URL, "
        "settings.CACHES['default']['BACKEND'])",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.postgresql",
        "sluice",
        "5999",
        "redis://127.0.0.1:6999/0",
        "django.core.cache.backends.redis.RedisCache",
    ]


def test_complete_production_settings_start():
    result = start(GOOD_PRODUCTION, "print(settings.DEBUG, settings.ALLOWED_HOSTS)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False ['sluice.example.com']"


def test_a_bare_ipv6_pod_address_is_allowed_as_a_host_header_writes_it():
    # The downward API gives fd00::7; a request to the pod carries Host: [fd00::7]:8000.
    hosts = "sluice.example.com,10.0.0.7,fd00::7,[fd00::8]"
    result = start(
        {**GOOD_PRODUCTION, "DJANGO_ALLOWED_HOSTS": hosts},
        "from django.http.request import validate_host; print(settings.ALLOWED_HOSTS, "
        "validate_host('[fd00::7]', settings.ALLOWED_HOSTS), "
        "validate_host('fd00::7', settings.ALLOWED_HOSTS))",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "['sluice.example.com', '10.0.0.7', '[fd00::7]', '[fd00::8]'] True False"
    )


@pytest.mark.parametrize(
    "missing",
    [
        "DJANGO_SECRET_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "DJANGO_ALLOWED_HOSTS",
        "SLUICE_SECRETS_KEYS",
    ],
)
def test_production_refuses_to_start_without(missing):
    env = {k: v for k, v in GOOD_PRODUCTION.items() if k != missing}
    result = start(env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"Missing required environment variable(s): {missing}." in result.stderr


def test_production_names_every_missing_variable_at_once():
    result = start({"DJANGO_SETTINGS_MODULE": "controlplane.settings.production"})
    assert result.returncode != 0
    assert (
        "Missing required environment variable(s): DJANGO_SECRET_KEY, DATABASE_URL, "
        "REDIS_URL, DJANGO_ALLOWED_HOSTS, SLUICE_SECRETS_KEYS." in result.stderr
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DJANGO_SECRET_KEY", "short", "DJANGO_SECRET_KEY is too weak"),
        ("DATABASE_URL", "not-a-url", "DATABASE_URL is not a database URL"),
        ("DATABASE_URL", "mysql://u:p@h/db", "DATABASE_URL is not a database URL"),
        ("DATABASE_URL", "postgres://u:p@db.internal:5432/", "DATABASE_URL names no database"),
        ("DATABASE_URL", "sqlite:////tmp/x.sqlite3", "DATABASE_URL must point at PostgreSQL"),
        ("REDIS_URL", "memcached://cache:11211", "REDIS_URL must be a redis://"),
        ("DJANGO_ALLOWED_HOSTS", "*", "DJANGO_ALLOWED_HOSTS must list host names"),
        ("SLUICE_DATAPLANE_DRIVER", "docker", "SLUICE_DATAPLANE_DRIVER must be one of"),
        ("SLUICE_SECRETS_KEYS", "not-a-key", "SLUICE_SECRETS_KEYS: key 1 is not a Fernet key"),
        (
            "SLUICE_SECRETS_KEYS",
            "cHJvZHVjdGlvbi1zZWNyZXRzLWtleS1mb3ItdGVzdHM=,short",
            "SLUICE_SECRETS_KEYS: key 2 is not a Fernet key",
        ),
        (
            "SLUICE_SECRETS_KEYS",
            "c2x1aWNlOiBkZXZlbG9wbWVudCBvbmx5LCBwdWJsaWM=",
            "SLUICE_SECRETS_KEYS holds the public development key",
        ),
        (
            "SLUICE_WEBHOOK_ALLOWED_PRIVATE_NETWORKS",
            "127.0.0.1/32",
            "SLUICE_WEBHOOK_ALLOWED_PRIVATE_NETWORKS must be empty in production",
        ),
        (
            "SLUICE_WEBHOOK_ALLOWED_PRIVATE_NETWORKS",
            "localhost",
            "SLUICE_WEBHOOK_ALLOWED_PRIVATE_NETWORKS: 'localhost' is not a network",
        ),
    ],
)
def test_production_refuses_a_wrong_value(variable, value, message):
    result = start({**GOOD_PRODUCTION, variable: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DJANGO_DEBUG", "true", "DJANGO_DEBUG must be off in production"),
        (
            "DJANGO_EMAIL_BACKEND",
            "django.core.mail.backends.console.EmailBackend",
            "DJANGO_EMAIL_BACKEND is django.core.mail.backends.console.EmailBackend",
        ),
        (
            "DJANGO_EMAIL_BACKEND",
            "django.core.mail.backends.locmem.EmailBackend",
            "which delivers no mail",
        ),
        ("SLUICE_DATAPLANE_DRIVER", "simulated", "SLUICE_DATAPLANE_DRIVER is 'simulated'"),
    ],
)
def test_production_refuses_a_development_default(variable, value, message):
    result = start({**GOOD_PRODUCTION, variable: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


@pytest.mark.parametrize(
    ("unset", "message"),
    [
        ("DJANGO_EMAIL_BACKEND", "DJANGO_EMAIL_BACKEND is django.core.mail.backends.console"),
        ("SLUICE_DATAPLANE_DRIVER", "SLUICE_DATAPLANE_DRIVER is 'simulated'"),
    ],
)
def test_production_does_not_fall_back_on_a_development_default(unset, message):
    """Left unset, these take the embedded defaults of `make run`, which production refuses."""
    result = start({k: v for k, v in GOOD_PRODUCTION.items() if k != unset})
    assert result.returncode != 0
    assert message in result.stderr


def test_production_refuses_to_serve_metrics_to_anyone_unless_told():
    without_token = {k: v for k, v in GOOD_PRODUCTION.items() if k != "SLUICE_METRICS_TOKEN"}
    refused = start(without_token)
    assert refused.returncode != 0
    assert "SLUICE_METRICS_TOKEN is required" in refused.stderr
    public = start(
        {**without_token, "SLUICE_METRICS_PUBLIC": "true"},
        "print(repr(settings.SLUICE_METRICS_TOKEN), settings.SLUICE_METRICS_PUBLIC)",
    )
    assert public.returncode == 0, public.stderr
    assert public.stdout.strip() == "'' True"


@pytest.mark.parametrize(
    ("value", "issuer"),
    [
        (None, ["Sluice"]),
        (
            "Sluice Inc.;  1 Main Street ; ;94105 San Francisco, CA",
            ["Sluice Inc.", "1 Main Street", "94105 San Francisco, CA"],
        ),
    ],
)
def test_the_invoice_issuer_is_a_name_then_address_lines(tmp_path, value, issuer):
    env = {
        "DJANGO_SETTINGS_MODULE": "controlplane.settings.local",
        "SLUICE_DATA_DIR": str(tmp_path),
    }
    if value is not None:
        env["SLUICE_INVOICE_ISSUER"] = value
    result = start(env, "print(json.dumps(settings.SLUICE_INVOICE_ISSUER))")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == issuer


def test_an_empty_invoice_issuer_is_refused(tmp_path):
    result = start(
        {
            "DJANGO_SETTINGS_MODULE": "controlplane.settings.local",
            "SLUICE_DATA_DIR": str(tmp_path),
            "SLUICE_INVOICE_ISSUER": " ; ",
        }
    )
    assert result.returncode != 0
    assert "SLUICE_INVOICE_ISSUER names the seller" in result.stderr


STRIPE_SETTINGS = (
    "print(json.dumps({'key': settings.STRIPE_API_KEY, 'secret': settings.STRIPE_WEBHOOK_SECRET, "
    "'base': settings.STRIPE_API_BASE, 'live': settings.STRIPE_LIVE_MODE}))"
)


def test_stripe_is_not_configured_by_default(tmp_path):
    """No key: Sluice rates and shows invoices but sends nothing to Stripe."""
    result = start(
        {"DJANGO_SETTINGS_MODULE": "controlplane.settings.local", "SLUICE_DATA_DIR": str(tmp_path)},
        STRIPE_SETTINGS,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "key": "",
        "secret": "",
        "base": "https://api.stripe.com",
        "live": False,
    }


@pytest.mark.parametrize(
    ("key", "live"),
    [("sk_live_51abc", True), ("rk_live_51abc", True), ("sk_test_51abc", False)],
)
def test_production_takes_a_live_or_test_mode_stripe_key_with_its_webhook_secret(key, live):
    """A test-mode key is allowed: staging runs the production settings on Stripe's test mode."""
    env = {**GOOD_PRODUCTION, "STRIPE_API_KEY": key, "STRIPE_WEBHOOK_SECRET": "whsec_abc"}
    result = start(env, STRIPE_SETTINGS)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["live"] is live


@pytest.mark.parametrize(
    ("stripe", "message"),
    [
        (
            {"STRIPE_API_KEY": "sk_live_51abc"},
            "STRIPE_WEBHOOK_SECRET is required with STRIPE_API_KEY",
        ),
        (
            {"STRIPE_API_KEY": "pk_live_51abc", "STRIPE_WEBHOOK_SECRET": "whsec_abc"},
            "STRIPE_API_KEY is not a secret key",
        ),
        (
            {"STRIPE_API_KEY": "sk_live_51abc", "STRIPE_WEBHOOK_SECRET": "abc"},
            "STRIPE_WEBHOOK_SECRET is not a webhook signing secret",
        ),
        ({"STRIPE_API_BASE": "http://127.0.0.1:12111"}, "STRIPE_API_BASE must be an https://"),
    ],
)
def test_production_refuses_an_unfit_stripe_setting(stripe, message):
    result = start({**GOOD_PRODUCTION, **stripe})
    assert result.returncode != 0
    assert message in result.stderr
    assert "51abc" not in result.stderr  # the key itself is never printed


def test_production_sends_usage_exports_over_https_only():
    plain = {**GOOD_PRODUCTION, "SLUICE_EXPORT_ENDPOINT_URL": "http://s3.internal:9000"}
    result = start(plain)
    assert result.returncode != 0
    assert "SLUICE_EXPORT_ENDPOINT_URL must be an https:// URL" in result.stderr
    secure = {**GOOD_PRODUCTION, "SLUICE_EXPORT_ENDPOINT_URL": "https://s3.internal:9000"}
    assert start(secure).returncode == 0


DEPLOY_CHECK = (
    "from django.core.management import execute_from_command_line; "
    "execute_from_command_line(['manage.py', 'check', '--deploy', '--fail-level', 'WARNING'])"
)


def test_webhooks_are_https_only_in_production_unless_allowed():
    code = "print(json.dumps(settings.SLUICE_WEBHOOK_ALLOW_HTTP))"
    assert start(GOOD_PRODUCTION, code).stdout.strip() == "false"
    allowed = {**GOOD_PRODUCTION, "SLUICE_WEBHOOK_ALLOW_HTTP": "true"}
    assert start(allowed, code).stdout.strip() == "true"


def test_production_deploy_checks_pass_with_hsts_fully_on():
    env = {
        **GOOD_PRODUCTION,
        "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
        "DJANGO_SECURE_HSTS_PRELOAD": "true",
    }
    result = run_python(DEPLOY_CHECK, env=clean_environment(**env))
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_deploy_checks_warn_only_about_hsts_scope_by_default():
    """Subdomains and preload are the operator's decision: off unless they opt in."""
    result = run_python(DEPLOY_CHECK, env=clean_environment(**GOOD_PRODUCTION))
    warnings = set(re.findall(r"\((security\.\w+)\)", result.stderr))
    assert warnings == {"security.W005", "security.W021"}, result.stderr


SEAL = "from foundation import secretbox; print(secretbox.seal('hunter2-kafka').decode())"
UNSEAL = "from foundation import secretbox; print(secretbox.unseal({token!r}))"


def test_sealed_values_survive_a_change_of_the_session_signing_key(tmp_path):
    """The key ring is its own: rotating DJANGO_SECRET_KEY leaves every sealed value readable,
    on the local installation's development key as with production's keys."""
    for environment in (
        {"DJANGO_SETTINGS_MODULE": "controlplane.settings.local", "SLUICE_DATA_DIR": str(tmp_path)},
        GOOD_PRODUCTION,
    ):
        sealed = start({**environment, "DJANGO_SECRET_KEY": "a" * 60}, SEAL)
        assert sealed.returncode == 0, sealed.stderr
        opened = start(
            {**environment, "DJANGO_SECRET_KEY": "b" * 60},
            UNSEAL.format(token=sealed.stdout.strip().encode()),
        )
        assert opened.returncode == 0, opened.stderr
        assert opened.stdout.strip() == "hunter2-kafka"
