"""The database: PostgreSQL when ``DATABASE_URL`` is set, an embedded SQLite file otherwise."""

import environ
from django.core.exceptions import ImproperlyConfigured

from .environment import DATA_DIR, env

_SCHEMES = {"postgres", "postgresql", "pgsql", "sqlite"}


def database_from_url(url: str) -> dict:
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in _SCHEMES:
        raise ImproperlyConfigured(
            f"DATABASE_URL is not a database URL Sluice can use (got scheme {scheme or 'none'!r});"
            " expected postgres://user:password@host:port/name"
        )
    config = environ.Env.db_url_config(url)
    if config["ENGINE"] == "django.db.backends.postgresql":
        if not config.get("NAME"):
            raise ImproperlyConfigured("DATABASE_URL names no database (…/name at the end)")
        config["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
        config["CONN_HEALTH_CHECKS"] = True
        config.setdefault("OPTIONS", {})["connect_timeout"] = env.int(
            "DATABASE_CONNECT_TIMEOUT", default=5
        )
    return config


def embedded_sqlite() -> dict:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "sluice.sqlite3",
        "OPTIONS": {
            # Web, worker and beat share the file under `make run`: WAL lets readers and one
            # writer proceed together, IMMEDIATE takes the write lock up front instead of
            # failing half-way through a transaction, and the timeout waits for it.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        },
    }


DATABASE_URL = env.str("DATABASE_URL", default="")
DATABASES = {"default": database_from_url(DATABASE_URL) if DATABASE_URL else embedded_sqlite()}
