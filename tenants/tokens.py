"""Secrets Sluice hands out (API keys, invitation tokens): generated here, shown once, and
stored only as a SHA-256 digest. They carry 256 bits of randomness, so a fast digest is enough:
there is nothing to brute-force that a slow hash would protect."""

import hashlib
import hmac
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
API_KEY_PREFIX = "slk"
PREFIX_LENGTH = 12
SECRET_LENGTH = 43  # ~256 bits in base62


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def matches(secret: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(secret), stored_digest)


def new_api_key() -> tuple[str, str]:
    """Returns (lookup prefix, whole key). The key reads ``slk_<prefix>_<secret>``."""
    prefix = _random(PREFIX_LENGTH)
    return prefix, f"{API_KEY_PREFIX}_{prefix}_{_random(SECRET_LENGTH)}"


def api_key_prefix(key: str) -> str | None:
    parts = key.split("_")
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX or len(parts[1]) != PREFIX_LENGTH:
        return None
    return parts[1]


def new_invitation_token() -> str:
    return secrets.token_urlsafe(32)
