"""Reads the process environment once, for every settings module.

Values come from environment variables; a ``.env`` file at the repository root, if present,
fills in what the environment does not set (it never overrides it).
"""

import os
from pathlib import Path

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parents[3]

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Embedded state (SQLite file, file-system broker, beat schedule) lives here.
DATA_DIR = Path(env.str("SLUICE_DATA_DIR", default=str(BASE_DIR / "var")))


def require(*names: str) -> None:
    """Fail at start, naming every required variable that is missing or empty."""
    missing = [name for name in names if not os.environ.get(name, "").strip()]
    if missing:
        raise ImproperlyConfigured(
            "Missing required environment variable(s): "
            + ", ".join(missing)
            + ". Set them before starting Sluice in production (see README.md)."
        )


def secrets_keys(value: str) -> tuple[str, ...]:
    """SLUICE_SECRETS_KEYS: Fernet keys, comma-separated, newest first; fails at start, naming
    the variable, when it holds none or something that is not a Fernet key."""
    keys = tuple(key.strip() for key in value.split(",") if key.strip())
    if not keys:
        raise ImproperlyConfigured("SLUICE_SECRETS_KEYS holds no key")
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"SLUICE_SECRETS_KEYS: key {position} is not a Fernet key (32 url-safe base64"
                ' bytes: python -c "from cryptography.fernet import Fernet;'
                ' print(Fernet.generate_key().decode())")'
            ) from None
    return keys
