"""A cell's credentials become sealed kubeconfig content instead of a file path.

Each cell whose ``kubeconfig`` names a file has that file read in: the files it names in turn
(a CA certificate, a client certificate and key, a token file; relative to the kubeconfig's
folder) are put inline, the result is checked as a kubeconfig an operator would paste, and it is
sealed. A cell whose file cannot be read or is refused (an ``exec`` plugin, for one) stops the
migration with the cell, the path and the reason: reaching the data plane with other
credentials than the ones named (the in-cluster configuration, which an empty value means) could
write a tenant's objects into another Kubernetes cluster. Fix the file, or empty the cell's path
(meaning the in-cluster configuration), and migrate again. Going back leaves the paths empty."""

import base64
from pathlib import Path

import foundation.secretbox
import yaml
from django.db import migrations, models

from clusters import cell_credentials

# A kubeconfig's references to files, and the inline field each becomes.
FILE_FIELDS = {
    "clusters": {"certificate-authority": "certificate-authority-data"},
    "users": {
        "client-certificate": "client-certificate-data",
        "client-key": "client-key-data",
        "tokenFile": "token",
    },
}


def inline_files(text: str, folder: Path) -> str:
    document = yaml.safe_load(text)
    if not isinstance(document, dict):
        return text  # refused as such by the check that follows
    for section, fields in FILE_FIELDS.items():
        for entry in document.get(section) or []:
            body = (entry or {}).get(section[:-1]) or {}
            for path_field, data_field in fields.items():
                if body.get(path_field):
                    content = (folder / body.pop(path_field)).read_bytes()
                    body[data_field] = (
                        content.decode().strip()
                        if data_field == "token"
                        else base64.b64encode(content).decode()
                    )
    return yaml.safe_dump(document)


def seal_kubeconfig_files(apps, schema_editor):
    cell_model = apps.get_model("clusters", "Cell")
    for cell in cell_model.objects.exclude(kubeconfig=""):
        path = Path(cell.kubeconfig)
        try:
            kubeconfig = cell_credentials.from_kubeconfig(
                inline_files(path.read_text(), path.parent)
            )
        except cell_credentials.InvalidCredentials as error:
            refuse(cell, path, str(error))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            refuse(cell, path, type(error).__name__)
        for column, value in cell_credentials.sealed_columns(kubeconfig).items():
            setattr(cell, column, value)
        cell.save(update_fields=["credentials_sealed", "credentials_fingerprint", "api_server"])


def refuse(cell, path: Path, reason: str):
    raise RuntimeError(
        f"Cell {cell.slug!r}: its kubeconfig file {str(path)!r} cannot be sealed ({reason}). "
        "Make the file readable and self-sufficient (no exec plugin), or empty the cell's "
        "kubeconfig path in the admin, and migrate again; then register its credentials with "
        "`manage.py register_cell`."
    )


class Migration(migrations.Migration):
    dependencies = [
        ("clusters", "0019_sluice_principals_passwords"),
    ]

    operations = [
        migrations.AddField(
            model_name="cell",
            name="api_server",
            field=models.CharField(blank=True, editable=False, max_length=255),
        ),
        migrations.AddField(
            model_name="cell",
            name="credentials_fingerprint",
            field=models.CharField(blank=True, editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name="cell",
            name="credentials_sealed",
            field=foundation.secretbox.SealedField(null=True),
        ),
        migrations.RunPython(seal_kubeconfig_files, migrations.RunPython.noop),
        migrations.RemoveField(
            model_name="cell",
            name="kubeconfig",
        ),
    ]
