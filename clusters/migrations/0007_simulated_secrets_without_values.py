"""Secrets the simulated data plane stored with their values (credential passwords): keep
their keys only, as it stores them today."""

from django.db import migrations

REDACTED = "<not stored>"


def forwards(apps, schema_editor):
    SimulatedObject = apps.get_model("clusters", "SimulatedObject")
    for stored in SimulatedObject.objects.filter(kind="Secret").iterator():
        manifest = dict(stored.manifest)
        for part in ("data", "stringData"):
            if part in manifest:
                manifest[part] = dict.fromkeys(manifest[part], REDACTED)
        if manifest != stored.manifest:
            SimulatedObject.objects.filter(pk=stored.pk).update(manifest=manifest)


class Migration(migrations.Migration):
    dependencies = [("clusters", "0006_credential_password_sealed_field")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
