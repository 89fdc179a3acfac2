"""Run Sluice in a separate process with an environment of the test's choosing: settings are
read once per process, so a wrong or missing setting can only be seen from a fresh one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# Sluice's five packages and their folders: the two under platform/ are mapped by pyproject.toml.
PACKAGE_FOLDERS = {
    "foundation": REPO_ROOT / "platform" / "foundation",
    "controlplane": REPO_ROOT / "platform" / "controlplane",
    "tenants": REPO_ROOT / "tenants",
    "clusters": REPO_ROOT / "clusters",
    "billing": REPO_ROOT / "billing",
}

# Variables a test may not inherit by accident from the harness.
_SLUICE_VARIABLES = (
    "DATABASE_URL",
    "REDIS_URL",
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "DJANGO_DEBUG",
    "DJANGO_EMAIL_BACKEND",
    # Set for the test process only (tests/conftest.py); production's checks refuse it.
    "DJANGO_ALLOW_ASYNC_UNSAFE",
    "CELERY_RESULT_BACKEND",
    "SLUICE_DATA_DIR",
    "SLUICE_DATAPLANE_DRIVER",
    "SLUICE_SECRETS_KEYS",
    "STRIPE_API_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_API_BASE",
)


def database_url(settings_dict: dict) -> str:
    """The URL of a Django database connection's settings (e.g. the test database)."""
    from urllib.parse import quote

    return "postgres://{user}:{password}@{host}:{port}/{name}".format(
        user=quote(settings_dict["USER"]),
        password=quote(settings_dict["PASSWORD"]),
        host=settings_dict["HOST"],
        port=settings_dict["PORT"],
        name=settings_dict["NAME"],
    )


def clean_environment(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SLUICE_VARIABLES}
    env.update(overrides)
    return env


def run_python(
    code: str, *, env: dict[str, str], cwd: Path = REPO_ROOT, timeout: float = 60
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_on_sqlite(script: str, data_dir: Path, *, timeout: float = 180):
    """Run ``script`` in a child process as ``make run`` runs: the local settings, on a new
    SQLite file in ``data_dir`` (the script migrates it). Its last line of output, parsed as
    JSON, is the answer; a failure shows the end of its standard error."""
    result = run_python(
        script,
        env=clean_environment(
            DJANGO_SETTINGS_MODULE="controlplane.settings.local", SLUICE_DATA_DIR=str(data_dir)
        ),
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
