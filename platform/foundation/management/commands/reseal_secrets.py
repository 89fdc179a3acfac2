"""Re-seal every sealed value under the newest key of SLUICE_SECRETS_KEYS, so that the older
keys can be dropped. Idempotent; safe to run while Sluice runs (each batch locks its rows)."""

from django.core.management.base import BaseCommand, CommandError

from foundation import secretbox


class Command(BaseCommand):
    help = (
        "Re-seal every sealed value (Kafka credential passwords, cells' credentials, webhook "
        "signing secrets) under the newest key of "
        "SLUICE_SECRETS_KEYS. Run it after putting a new key first, before dropping the old one."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=500, help="rows per transaction")

    def handle(self, *args, batch_size: int, **options) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        report = secretbox.reseal_all(batch_size=batch_size)
        self.stdout.write(
            f"Re-sealed {report.resealed}; {report.current} already under the newest key; "
            f"{len(report.unreadable)} unreadable."
        )
        if report.unreadable:
            raise CommandError(
                "No key of SLUICE_SECRETS_KEYS opens: "
                + ", ".join(report.unreadable)
                + ". Add back the key that sealed them (or rotate those credentials)."
            )
