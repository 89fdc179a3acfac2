"""Public identifiers: a type prefix and random lower-case letters and digits (``org_…``,
``kc_…``, ``op_…``). The random part is DNS-label safe, so it can name Kubernetes objects."""

import secrets
import string

_ALPHABET = string.ascii_lowercase + string.digits
RANDOM_LENGTH = 16


def new_public_id(prefix: str) -> str:
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(RANDOM_LENGTH))


class PublicIdConverter:
    """``<public_id:org>`` in a URL: only an id's shape matches, so a path with anything else
    there (a NUL character, which PostgreSQL cannot compare, or a long string) is not routed
    and answers 404 before any query."""

    regex = r"[a-z]+_[a-z0-9]{1,64}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value
