"""Readiness checks: each returns None when the part is reachable, or a short reason."""

from collections.abc import Callable

from django.db import connections

from foundation.text import error_summary

from .celery import app as celery_app


def check_database() -> str | None:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # any driver error means "not ready"
        return error_summary(error)
    return None


def check_broker() -> str | None:
    try:
        with celery_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=3)
    except Exception as error:  # any transport error means "not ready"
        return error_summary(error)
    return None


READINESS_CHECKS: dict[str, Callable[[], str | None]] = {
    "database": check_database,
    "broker": check_broker,
}


def readiness() -> dict[str, str]:
    """Run every check; the value is "ok" or the reason it failed."""
    results = {}
    for name, check in READINESS_CHECKS.items():
        failure = check()
        results[name] = "ok" if failure is None else failure
    return results
