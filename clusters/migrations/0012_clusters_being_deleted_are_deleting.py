"""A cluster whose deletion was requested is deleting until it is deleted (clusters.lifecycle).
A run that applied an older generation could take such a cluster back to updating, ready or
failed until its deletion's run set it deleting again: such a row, caught between the two when
this is deployed, is set deleting, where its deletion's run expects it."""

from django.db import migrations


def forwards(apps, schema_editor):
    Cluster = apps.get_model("clusters", "Cluster")
    Cluster.objects.filter(delete_requested_at__isnull=False, deleted_at__isnull=True).exclude(
        state="deleting"
    ).update(state="deleting")


class Migration(migrations.Migration):
    dependencies = [("clusters", "0011_cell_shared_kafka_brokers")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
