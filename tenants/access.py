"""The tenancy gate of every ``/orgs/<org>/…`` request, API and web UI alike.

It resolves the organization named in the URL and the caller's role in it (a member's
membership, or one of the organization's API keys), answers "not found" to anyone else so an
organization's existence is not revealed (and to everyone once the organization is closed, as
if it had never been), and checks that the caller's role grants the scope the HTTP method
needs. Each front end translates the gate's refusals into its own answers
(problem documents for the API, pages for the web UI) and enters the tenant scope its own way.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import selectors
from .audit import Actor
from .models import ApiKey, Membership, Organization
from .roles import scopes_of
from .scoping import tenant_scope


class NotAMember(Exception):
    """No such organization, or the caller is not in it: answered as not found."""


class MethodNotAllowed(Exception):
    """The URL does not take this method (told to members only: outsiders are not a member)."""


class ScopeNotGranted(Exception):
    """The caller's role does not grant the scope the method needs (``needed`` is None when the
    method needs a scope nobody declared)."""

    def __init__(self, role: str, needed: str | None) -> None:
        super().__init__(role, needed)
        self.role = role
        self.needed = needed


@dataclass(frozen=True)
class OrganizationAccess:
    """The organization in the URL and what the caller may do in it: a member (``membership``)
    or one of the organization's API keys (``api_key``)."""

    organization: Organization
    role: str
    membership: Membership | None = None
    api_key: ApiKey | None = None

    @property
    def scopes(self) -> frozenset[str]:
        return scopes_of(self.role)

    def can(self, scope: str) -> bool:
        return scope in self.scopes

    def actor(self, request) -> Actor:
        if self.api_key is not None:
            return Actor(api_key=self.api_key)
        return Actor(user=request.user)

    def require(self, method: str, *, allowed: set[str], scope_map: dict[str, str]) -> str:
        """The scope ``method`` needs, once the URL takes it and the role grants it. A member
        learns which methods the URL has before whether their role may use them."""
        if method not in allowed:
            raise MethodNotAllowed(method)
        needed = scope_map.get(method)
        if needed is None or not self.can(needed):
            raise ScopeNotGranted(self.role, needed)
        return needed


def organization_access(
    *, org: str | None, user, api_key: ApiKey | None = None
) -> OrganizationAccess:
    """The caller's access to the organization whose public id is ``org``; ``NotAMember`` if
    there is no such organization, it is closed, or the caller is not in it."""
    if api_key is not None:
        # A key belongs to one organization, loaded with it: any other {org} is not found.
        if api_key.organization.public_id != org or api_key.organization.is_closed:
            raise NotAMember(org)
        return OrganizationAccess(
            organization=api_key.organization,
            role=selectors.api_key_role(api_key=api_key),
            api_key=api_key,
        )
    organization = Organization.objects.filter(public_id=org, closed_at__isnull=True).first()
    if organization is None:
        raise NotAMember(org)
    with tenant_scope(organization):
        membership = selectors.membership_of(user=user, organization=organization)
    if membership is None:
        raise NotAMember(org)
    return OrganizationAccess(
        organization=organization, role=membership.role, membership=membership
    )
