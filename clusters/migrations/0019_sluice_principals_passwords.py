"""The passwords of Sluice's own principals on each cluster's Kafka (the consumer-group observer
and the offsets principal): a fresh one for every existing cluster, each sealed on its own
(a column default would give them all the same one), then the default new clusters get."""

import foundation.secretbox
from django.db import migrations

import clusters.models

FIELDS = ("observer_password_encrypted", "offsets_password_encrypted")


def give_passwords(apps, schema_editor):
    cluster_model = apps.get_model("clusters", "Cluster")
    for cluster in cluster_model._base_manager.filter(deleted_at__isnull=True).iterator():
        for field in FIELDS:
            setattr(cluster, field, clusters.models.new_sealed_password())
        cluster.save(update_fields=list(FIELDS))


class Migration(migrations.Migration):
    dependencies = [
        ("clusters", "0018_operation_audit_event"),
    ]

    operations = [
        *(
            migrations.AddField(
                model_name="cluster",
                name=field,
                field=foundation.secretbox.SealedField(null=True),
            )
            for field in FIELDS
        ),
        migrations.RunPython(give_passwords, migrations.RunPython.noop),
        *(
            migrations.AlterField(
                model_name="cluster",
                name=field,
                field=foundation.secretbox.SealedField(
                    default=clusters.models.new_sealed_password, null=True
                ),
            )
            for field in FIELDS
        ),
    ]
