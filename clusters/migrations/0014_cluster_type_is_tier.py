"""Cluster types are tiers: the model and the keys to it take the one name. Renames: the rows
stay. The prices' one-version constraint names the key, so it is dropped and made again around
the rename (a dozen rows)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("clusters", "0013_dimension_labels_one_set")]

    operations = [
        migrations.RemoveConstraint(model_name="tierprice", name="one_price_version"),
        migrations.RenameModel("ClusterType", "Tier"),
        migrations.RenameField("tierprice", "cluster_type", "tier"),
        migrations.RenameField("cluster", "cluster_type", "tier"),
        migrations.AlterModelOptions(
            name="tierprice",
            options={"ordering": ["tier", "dimension", "-effective_from"]},
        ),
        migrations.AddConstraint(
            model_name="tierprice",
            constraint=models.UniqueConstraint(
                fields=("tier", "dimension", "effective_from"), name="one_price_version"
            ),
        ),
    ]
