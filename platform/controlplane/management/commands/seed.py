"""Seed a local installation: a demo organization with its owner, an operator account, and,
on the simulated data plane, a cell in each of two regions so that clusters can be created.

Meant for `make run` on embedded defaults; refuses to run with DEBUG off unless --force.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from clusters.models import Cell
from tenants import services as tenant_services
from tenants.models import Organization, User

DEMO_ORGANIZATION = "Demo"
DEMO_EMAIL = "demo@sluice.local"
OPERATOR_EMAIL = "operator@sluice.local"
DEMO_PASSWORD = "sluice-demo"  # noqa: S105 - local installations only, see the DEBUG guard
# Simulated cells: (slug, cloud, region). Real cells are added by operators in the admin.
SIMULATED_CELLS = (("local-eu-west-1", "aws", "eu-west-1"), ("local-us-east-1", "aws", "us-east-1"))


class Command(BaseCommand):
    help = (
        "Create the demo organization, its owner, an operator account and, on the simulated "
        "data plane, two cells (idempotent)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--force", action="store_true", help="seed even with DEBUG off")

    def handle(self, *args, force: bool = False, **options) -> None:
        if not settings.DEBUG and not force:
            raise CommandError("seed creates accounts with a known password: DEBUG is off")
        demo, created = User.objects.get_or_create(email=DEMO_EMAIL)
        if created:
            demo.set_password(DEMO_PASSWORD)
            demo.save(update_fields=["password"])
        if not Organization.objects.filter(memberships__user=demo).exists():
            tenant_services.organization_create(name=DEMO_ORGANIZATION, owner=demo)
        if not User.objects.filter(email=OPERATOR_EMAIL).exists():
            User.objects.create_superuser(OPERATOR_EMAIL, DEMO_PASSWORD)
        if settings.SLUICE_DATAPLANE_DRIVER == "simulated" and not Cell.objects.exists():
            for slug, cloud, region in SIMULATED_CELLS:
                Cell.objects.create(
                    slug=slug,
                    cloud=cloud,
                    region=region,
                    shared_bootstrap=f"shared.{region}.simulated.sluice.invalid:9092",
                )
        self.stdout.write(
            f"Tenant login:   {DEMO_EMAIL} / {DEMO_PASSWORD}\n"
            f"Operator login: {OPERATOR_EMAIL} / {DEMO_PASSWORD} (admin dashboard at /admin/)"
        )
