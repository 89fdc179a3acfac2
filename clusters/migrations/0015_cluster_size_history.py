"""The record of cluster sizes (tier and capacity units over time) that cluster-hours and
capacity-unit-hours are metered from; clusters made before it was kept get one row each: their
current tier and units, since their creation."""

import django.db.models.deletion
import django.db.models.manager
from django.db import migrations, models


def record_existing_clusters(apps, schema_editor):
    Cluster = apps.get_model("clusters", "Cluster")
    ClusterSize = apps.get_model("clusters", "ClusterSize")
    ClusterSize.objects.bulk_create(
        (
            ClusterSize(
                organization_id=cluster.organization_id,
                cluster_id=cluster.pk,
                tier_id=cluster.tier_id,
                capacity_units=cluster.capacity_units,
                since=cluster.created_at,
            )
            for cluster in Cluster._base_manager.all().iterator()
        ),
        batch_size=1000,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("clusters", "0014_cluster_type_is_tier"),
        ("tenants", "0006_idempotency_principal_holds_an_email"),
    ]

    operations = [
        migrations.CreateModel(
            name="ClusterSize",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("capacity_units", models.PositiveSmallIntegerField()),
                ("since", models.DateTimeField()),
                (
                    "cluster",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="size_history",
                        to="clusters.cluster",
                    ),
                ),
                (
                    "organization",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="tenants.organization",
                    ),
                ),
                (
                    "tier",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="clusters.tier",
                    ),
                ),
            ],
            options={
                "ordering": ["cluster_id", "since", "id"],
                "abstract": False,
                "base_manager_name": "unscoped_all_tenants",
                "indexes": [models.Index(fields=["cluster", "since"], name="cluster_size_since")],
            },
            managers=[
                ("objects", django.db.models.manager.Manager()),
                ("unscoped_all_tenants", django.db.models.manager.Manager()),
            ],
        ),
        migrations.RunPython(record_existing_clusters, migrations.RunPython.noop),
    ]
