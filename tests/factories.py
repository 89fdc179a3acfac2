"""Test data, made through the services so every object is as the product makes it."""

from datetime import datetime

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from tenants import services
from tenants.audit import Actor
from tenants.models import ApiKey, Membership, Organization, User
from tenants.roles import Role
from tenants.scoping import tenant_scope

PASSWORD = "correct-horse-battery-staple"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    first_name = factory.Faker("first_name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


def make_org(*, owner: User | None = None, name: str = "Acme") -> Organization:
    return services.organization_create(name=name, owner=owner or UserFactory())


def add_member(organization: Organization, role: str, user: User | None = None) -> Membership:
    with tenant_scope(organization):
        return Membership.objects.create(
            organization=organization, user=user or UserFactory(), role=role
        )


def make_api_key(
    organization: Organization,
    role: str = Role.DEVELOPER,
    *,
    creator: User | None = None,
    name: str | None = None,
) -> tuple[ApiKey, str]:
    """A key created by ``creator`` (a member), by default the organization's first owner: a
    key acts at most with its creator's role, for as long as they are a member."""
    with tenant_scope(organization):
        if creator is None:
            creator = (
                Membership.objects.filter(organization=organization, role=Role.OWNER)
                .select_related("user")
                .earliest("created_at")
                .user
            )
        membership = Membership.objects.get(organization=organization, user=creator)
        return services.api_key_create(
            organization=organization,
            name=name or f"{role} automation",
            role=role,
            actor=Actor(user=creator),
            actor_role=membership.role,
        )


def make_cell(
    region: str = "eu-west-1", slug: str | None = None, credentials: dict | None = None, **fields
):
    """The cell ``slug``, made with ``fields`` when missing; ``credentials`` (a checked
    kubeconfig, e.g. ``tests.support.cells.kube_credentials``) are sealed into it."""
    from clusters import cell_credentials
    from clusters.catalog import seed_catalog
    from clusters.models import Cell, Tier, TierPrice

    # A transactional test before this one may have emptied the tables.
    seed_catalog(Tier, TierPrice)

    slug = slug or f"{region}-a"
    if credentials is not None:
        fields.update(cell_credentials.sealed_columns(credentials))
    return Cell.objects.get_or_create(slug=slug, defaults={"region": region, **fields})[0]


def make_cluster(
    organization: Organization,
    *,
    tier_slug: str = "serverless",
    name: str = "events",
    capacity_units: int | None = None,
):
    from clusters import services as cluster_services

    make_cell()
    with tenant_scope(organization):
        return cluster_services.cluster_create(
            organization=organization,
            actor=Actor(system="tests"),
            name=name,
            tier_slug=tier_slug,
            region="eu-west-1",
            capacity_units=capacity_units,
        )


def close_month_of(organization: Organization, moment: datetime) -> None:
    """Mark the organization's month holding ``moment`` closed: its ledger hours final, as the
    month close leaves them (without the invoice)."""
    from billing.models import ClosedMonth

    ClosedMonth.unscoped_all_tenants.create(
        organization=organization,
        period_start=moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0),
        closed_at=timezone.now(),
    )
