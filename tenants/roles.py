"""Roles, the scopes each grants, and the scope each API method needs."""

from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    DEVELOPER = "developer", "Developer"
    VIEWER = "viewer", "Viewer"
    BILLING = "billing", "Billing"


# Every member may read the organization, its members, and its usage (the charts).
_READ_ALL = {"org:read", "members:read", "usage:read"}

ROLE_SCOPES: dict[str, frozenset[str]] = {
    Role.OWNER: frozenset(
        _READ_ALL
        | {"org:write", "org:owner", "members:write", "invitations:read", "invitations:write"}
        | {"apikeys:read", "apikeys:write", "audit:read"}
        | {"clusters:read", "clusters:write", "billing:read", "billing:write"}
    ),
    Role.ADMIN: frozenset(
        _READ_ALL
        | {"org:write", "members:write", "invitations:read", "invitations:write"}
        | {"apikeys:read", "apikeys:write", "audit:read"}
        | {"clusters:read", "clusters:write", "billing:read"}
    ),
    Role.DEVELOPER: frozenset(
        _READ_ALL | {"apikeys:read", "apikeys:write", "clusters:read", "clusters:write"}
    ),
    Role.VIEWER: frozenset(_READ_ALL | {"clusters:read"}),
    Role.BILLING: frozenset(_READ_ALL | {"billing:read", "billing:write"}),
}


def scopes_of(role: str) -> frozenset[str]:
    return ROLE_SCOPES[role]


def can_grant(granter_role: str, role: str) -> bool:
    """A member may give a role only if it grants nothing the member lacks."""
    return scopes_of(role) <= scopes_of(granter_role)


def lesser_role(role: str, other: str) -> str | None:
    """The stronger role granting nothing that either of the two lacks, or None when no role
    does (a developer and a billing member share no role: viewer reads clusters, billing does
    not)."""
    common = scopes_of(role) & scopes_of(other)
    within = [candidate for candidate in Role.values if scopes_of(candidate) <= common]
    return max(within, key=lambda candidate: len(scopes_of(candidate)), default=None)


def read_write_scope_map(resource: str) -> dict[str, str]:
    """The usual map: safe methods need ``<resource>:read``, the others ``<resource>:write``."""
    read, write = f"{resource}:read", f"{resource}:write"
    return {
        "GET": read,
        "HEAD": read,
        "OPTIONS": read,
        "POST": write,
        "PUT": write,
        "PATCH": write,
        "DELETE": write,
    }
