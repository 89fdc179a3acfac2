"""Register a data-plane cluster as a cell, or update one: ``manage.py register_cell SLUG
--region R --kubeconfig-file F`` (or ``--server URL --ca-file F --token-file F``). Secrets are
read from files, or from standard input for the one given as ``-``, never from the command
line (which other users of the host can read). Running it again with the same values changes
nothing."""

import argparse
import sys

from django.core.management.base import BaseCommand, CommandError

from clusters import cell_credentials
from clusters.services.cells import cell_register
from foundation.errors import InvalidInput

# Options naming a field of the cell: (option, field, type).
FIELD_OPTIONS = [
    ("--region", "region", str),
    ("--cloud", "cloud", str),
    ("--shared-kafka-namespace", "shared_kafka_namespace", str),
    ("--shared-kafka-name", "shared_kafka_name", str),
    ("--shared-bootstrap", "shared_bootstrap", str),
    ("--shared-kafka-brokers", "shared_kafka_brokers", int),
    ("--prometheus-url", "prometheus_url", str),
]
FILE_OPTIONS = ("kubeconfig_file", "ca_file", "token_file")


class Command(BaseCommand):
    help = (
        "Create or update the cell SLUG and its credentials for its Kubernetes API: a "
        "kubeconfig (--kubeconfig-file), or an API server URL with its CA certificate and a "
        "ServiceAccount token (--server, --ca-file, --token-file). A file given as - is read "
        "from standard input. Without credentials a new cell uses the in-cluster configuration "
        "(or SLUICE_KUBECONFIG) and an existing one keeps its own."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        for option, field, kind in FIELD_OPTIONS:
            parser.add_argument(option, dest=field, type=kind)
        parser.add_argument(
            "--accepting",
            action=argparse.BooleanOptionalAction,
            help="whether new clusters may be placed on the cell (a new cell: yes)",
        )
        parser.add_argument("--kubeconfig-file", help="a kubeconfig (its current context)")
        parser.add_argument("--server", help="the API server's https:// URL")
        parser.add_argument("--ca-file", help="the API server's CA certificate (PEM)")
        parser.add_argument("--token-file", help="a bearer token (a ServiceAccount's)")
        parser.add_argument(
            "--clear-credentials",
            action="store_true",
            help="forget the cell's credentials: the in-cluster configuration applies",
        )

    def handle(self, *args, slug: str, **options) -> None:
        names = [field for _, field, _ in FIELD_OPTIONS] + ["accepting"]
        fields = {name: options[name] for name in names if options[name] is not None}
        try:
            cell, changed = cell_register(
                slug=slug,
                credentials=self.credentials(options),
                clear_credentials=options["clear_credentials"],
                **fields,
            )
        except (InvalidInput, cell_credentials.InvalidCredentials) as error:
            raise CommandError(str(error)) from None
        credentials = f"credentials {cell_credentials.summary(cell)}"
        if changed == ["created"]:
            self.stdout.write(f"Created cell {cell.slug} ({credentials}).")
        elif changed:
            self.stdout.write(f"Updated cell {cell.slug}: {', '.join(changed)} ({credentials}).")
        else:
            self.stdout.write(f"Cell {cell.slug} unchanged ({credentials}).")

    def credentials(self, options) -> dict | None:
        if [options[name] for name in FILE_OPTIONS].count("-") > 1:
            raise CommandError("Only one file can be read from standard input (-).")
        given = [options[name] for name in (*FILE_OPTIONS, "server")]
        if options["clear_credentials"] and any(given):
            raise CommandError("--clear-credentials takes no credentials.")
        return cell_credentials.from_given(
            kubeconfig=self.read(options["kubeconfig_file"]),
            server=options["server"] or "",
            ca_certificate=self.read(options["ca_file"]),
            token=self.read(options["token_file"]),
        )

    def read(self, path: str | None) -> str:
        if not path:
            return ""
        if path == "-":
            return sys.stdin.read()
        try:
            with open(path, encoding="utf-8") as file:
                return file.read()
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"Cannot read {path}: {error.__class__.__name__}") from None
