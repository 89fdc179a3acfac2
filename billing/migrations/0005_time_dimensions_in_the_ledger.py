"""The ledger takes the time dimensions: cluster-hours and capacity-unit-hours."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0004_dimension_labels_shared_with_prices"),
    ]

    operations = [
        migrations.AlterField(
            model_name="usageadjustment",
            name="dimension",
            field=models.CharField(
                choices=[
                    ("ingress_bytes", "Ingress (written)"),
                    ("egress_bytes", "Egress (read)"),
                    ("storage_byte_hours", "Storage"),
                    ("partition_hours", "Partition hours"),
                    ("cluster_hours", "Cluster hours"),
                    ("capacity_unit_hours", "Capacity-unit hours"),
                ],
                max_length=32,
            ),
        ),
        migrations.AlterField(
            model_name="usagehour",
            name="dimension",
            field=models.CharField(
                choices=[
                    ("ingress_bytes", "Ingress (written)"),
                    ("egress_bytes", "Egress (read)"),
                    ("storage_byte_hours", "Storage"),
                    ("partition_hours", "Partition hours"),
                    ("cluster_hours", "Cluster hours"),
                    ("capacity_unit_hours", "Capacity-unit hours"),
                ],
                max_length=32,
            ),
        ),
    ]
