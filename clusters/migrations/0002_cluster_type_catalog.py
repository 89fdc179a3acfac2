"""The initial catalog of cluster types and prices (clusters/catalog.py)."""

from django.db import migrations


def seed(apps, schema_editor):
    from clusters.catalog import seed_catalog

    seed_catalog(apps.get_model("clusters", "ClusterType"), apps.get_model("clusters", "TierPrice"))


class Migration(migrations.Migration):
    dependencies = [("clusters", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
