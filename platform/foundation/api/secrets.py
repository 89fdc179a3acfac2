"""Responses that show a secret once (a new API key, a credential's new password).

Such a response is never cached (``Cache-Control: no-store``) and names its secret fields, so
that whatever keeps a copy of it (the ``Idempotency-Key`` record) keeps it without them: a
replay answers the same object with each secret field null and a ``Secret-Withheld`` header
naming them. The secret exists in plaintext in the one response that shows it, nowhere else.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from rest_framework.response import Response

NO_STORE = "no-store"
WITHHELD_HEADER = "Secret-Withheld"
# For the OpenAPI description of every endpoint that answers with a ShownOnce.
SHOWN_ONCE_DESCRIPTION = (
    "The answer shows a secret, once (`Cache-Control: no-store`). Replayed for the same "
    "`Idempotency-Key`, it is the same object with the secret fields null and a "
    f"`{WITHHELD_HEADER}` header naming them: Sluice keeps no copy of the secret."
)


class ShownOnce(Response):
    """A response carrying secrets; ``secret_fields`` are dotted paths into its body
    (``"key"``, ``"credential.password"``)."""

    def __init__(self, data, *, secret_fields: Sequence[str], **kwargs) -> None:
        super().__init__(data, **kwargs)
        self.secret_fields = tuple(secret_fields)
        self["Cache-Control"] = NO_STORE


def secret_fields_of(response) -> tuple[str, ...]:
    return getattr(response, "secret_fields", ())


def withheld(body: bytes, secret_fields: Sequence[str]) -> bytes:
    """The JSON ``body`` with every secret field set to null (absent ones stay absent)."""
    document = json.loads(body)
    for path in secret_fields:
        *parents, name = path.split(".")
        node = document
        for parent in parents:
            node = node.get(parent) if isinstance(node, dict) else None
        if isinstance(node, dict) and name in node:
            node[name] = None
    return json.dumps(document, separators=(",", ":")).encode()
