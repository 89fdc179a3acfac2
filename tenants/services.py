from django.db import transaction

from .models import Membership, Organization, Role, User


@transaction.atomic
def organization_create(*, name: str, owner: User) -> Organization:
    """Create an organization; its creator becomes its owner."""
    organization = Organization.objects.create(name=name)
    Membership.objects.create(user=owner, organization=organization, role=Role.OWNER)
    return organization
