"""``manage.py register_cell``: a cell created or updated by its slug, its credentials read
from files or standard input (never from the command line), idempotent; and the migration that
turned cells' kubeconfig paths into sealed credentials."""

import base64
import io

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from clusters.models import Cell
from foundation import secretbox
from tests.support.kubeenv import make_pki

pytestmark = pytest.mark.django_db

TOKEN = "a-service-account-token-read-from-a-file-0123456789"
SERVER = "https://kube.eu-west-1.example:6443"


@pytest.fixture
def ca_file(tmp_path):
    return make_pki(tmp_path).ca_cert


def register(*args, stdin: str | None = None, monkeypatch=None) -> str:
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    out = io.StringIO()
    call_command("register_cell", *args, stdout=out)
    return out.getvalue()


def sealed_token(cell: Cell) -> str:
    return yaml.safe_load(secretbox.unseal(cell.credentials_sealed))["users"][0]["user"]["token"]


def test_a_cell_is_registered_from_files_and_a_rerun_changes_nothing(tmp_path, ca_file):
    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\n")
    args = ["eu-k8s", "--region", "eu-west-1", "--shared-kafka-namespace", "kafka-shared"]
    args += ["--server", SERVER, "--ca-file", str(ca_file), "--token-file", str(token_file)]

    created = register(*args)
    cell = Cell.objects.get(slug="eu-k8s")
    fingerprint = f"sha256:{cell.credentials_fingerprint[:16]}"
    assert created == f"Created cell eu-k8s (credentials set: {SERVER}, {fingerprint}).\n"
    assert (cell.region, cell.shared_kafka_namespace, cell.api_server) == (
        "eu-west-1",
        "kafka-shared",
        SERVER,
    )
    assert sealed_token(cell) == TOKEN
    sealed = bytes(cell.credentials_sealed)

    assert register(*args).startswith("Cell eu-k8s unchanged")
    cell.refresh_from_db()
    assert bytes(cell.credentials_sealed) == sealed  # not even re-sealed
    assert Cell.objects.count() == 1

    # Fields alone update the cell and keep its credentials.
    updated = register("eu-k8s", "--shared-kafka-brokers", "6", "--no-accepting")
    assert updated.startswith("Updated cell eu-k8s: shared_kafka_brokers, accepting (credentials")
    cell.refresh_from_db()
    assert (cell.shared_kafka_brokers, cell.accepting, sealed_token(cell)) == (6, False, TOKEN)


def test_a_kubeconfig_or_a_token_is_read_from_standard_input(tmp_path, ca_file, monkeypatch):
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "k",
                "cluster": {
                    "server": SERVER,
                    "certificate-authority-data": base64.b64encode(ca_file.read_bytes()).decode(),
                },
            }
        ],
        "users": [{"name": "u", "user": {"token": TOKEN}}],
        "contexts": [{"name": "k", "context": {"cluster": "k", "user": "u"}}],
        "current-context": "k",
    }
    out = register(
        "us-k8s",
        "--region",
        "us-east-1",
        "--kubeconfig-file",
        "-",
        stdin=yaml.safe_dump(kubeconfig),
        monkeypatch=monkeypatch,
    )
    assert out.startswith("Created cell us-k8s")
    assert TOKEN not in out
    assert sealed_token(Cell.objects.get(slug="us-k8s")) == TOKEN

    replaced = register(
        "us-k8s",
        *("--server", SERVER, "--ca-file", str(ca_file), "--token-file", "-"),
        stdin="another-token-given-on-standard-input",
        monkeypatch=monkeypatch,
    )
    assert replaced.startswith("Updated cell us-k8s: credentials")
    assert sealed_token(Cell.objects.get(slug="us-k8s")) == "another-token-given-on-standard-input"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kubeconfig-file", "{kubeconfig}", "--server", SERVER], "not both"),
        (["--server", SERVER, "--token-file", "{kubeconfig}"], "go together"),
        (["--server", SERVER, "--ca-file", "-", "--token-file", "-"], "Only one file"),
        (["--kubeconfig-file", "/nonexistent/kubeconfig"], "Cannot read /nonexistent/kubeconfig"),
        (["--clear-credentials", "--server", SERVER], "takes no credentials"),
        (["--kubeconfig-file", "{kubeconfig}"], "names no current-context"),
        (["--region", "mars-1"], "region: Value 'mars-1' is not a valid choice."),
    ],
)
def test_what_cannot_be_registered_is_refused(tmp_path, args, message):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(f"users: [{{name: u, user: {{token: {TOKEN}}}}}]\n")
    args = [arg.format(kubeconfig=kubeconfig) for arg in args]
    with pytest.raises(CommandError) as refused:
        register("eu-k8s", *(args if "--region" in args else ["--region", "eu-west-1", *args]))
    assert message in str(refused.value)
    assert TOKEN not in str(refused.value)
    assert not Cell.objects.filter(slug="eu-k8s").exists()


# The migration from paths -------------------------------------------------------------------

BEFORE = "0019_sluice_principals_passwords"


def migrate(target: tuple[str, str] | None) -> MigrationExecutor:
    """Migrate the test database to ``target`` (None: to the latest migrations)."""
    executor = MigrationExecutor(connection)
    executor.migrate([target] if target else executor.loader.graph.leaf_nodes())
    return MigrationExecutor(connection)  # a fresh one: it reads what is applied now


@pytest.mark.django_db(transaction=True)
def test_the_migration_seals_each_kubeconfig_file_with_the_files_it_names(tmp_path, ca_file):
    folder = tmp_path / "cells"
    folder.mkdir()
    (folder / "ca.crt").write_bytes(ca_file.read_bytes())
    (folder / "token").write_text(f"{TOKEN}\n")
    cluster = {"server": SERVER, "certificate-authority": "ca.crt"}  # relative to the file
    (folder / "eu.kubeconfig").write_text(
        yaml.safe_dump(
            {
                "clusters": [{"name": "k", "cluster": cluster}],
                "users": [{"name": "u", "user": {"tokenFile": str(folder / "token")}}],
                "contexts": [{"name": "k", "context": {"cluster": "k", "user": "u"}}],
                "current-context": "k",
            }
        )
    )
    try:
        executor = migrate(("clusters", BEFORE))
        old_cell = executor.loader.project_state(("clusters", BEFORE)).apps.get_model(
            "clusters", "Cell"
        )
        old_cell.objects.create(
            slug="eu-old", region="eu-west-1", kubeconfig=str(folder / "eu.kubeconfig")
        )
        old_cell.objects.create(slug="eu-default", region="eu-west-1", kubeconfig="")
        gone = old_cell.objects.create(
            slug="eu-gone", region="eu-west-1", kubeconfig=str(folder / "gone.kubeconfig")
        )

        # A file that cannot be read stops the migration, naming the cell and the path.
        with pytest.raises(RuntimeError) as refused:
            migrate(None)
        assert str(refused.value).startswith(
            f"Cell 'eu-gone': its kubeconfig file '{folder / 'gone.kubeconfig'}' cannot be "
            "sealed (FileNotFoundError)."
        )
        old_cell.objects.filter(pk=gone.pk).update(kubeconfig="")
        migrate(None)
    finally:
        migrate(None)

    cell = Cell.objects.get(slug="eu-old")
    assert (cell.api_server, sealed_token(cell)) == (SERVER, TOKEN)
    assert [c.credentials_sealed for c in Cell.objects.exclude(slug="eu-old")] == [None, None]
