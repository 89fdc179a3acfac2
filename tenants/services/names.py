"""What the tenancy writes share: a role in a sentence ("an owner", "a viewer") and the
display names of organizations and API keys."""

from __future__ import annotations

from foundation.errors import InvalidInput


def a_role(role: str) -> str:
    return f"an {role}" if role[0] in "aeiou" else f"a {role}"


def clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise InvalidInput("A name is required", field="name")
    if len(name) > 100:
        raise InvalidInput("Names are at most 100 characters", field="name")
    return name
