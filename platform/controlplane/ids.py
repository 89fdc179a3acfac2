"""Public identifiers: a type prefix and random lower-case letters and digits (``org_…``,
``kc_…``, ``op_…``). The random part is DNS-label safe, so it can name Kubernetes objects."""

import secrets
import string

_ALPHABET = string.ascii_lowercase + string.digits
RANDOM_LENGTH = 16


def new_public_id(prefix: str) -> str:
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(RANDOM_LENGTH))
