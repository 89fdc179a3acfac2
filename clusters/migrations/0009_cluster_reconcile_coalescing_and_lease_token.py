from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("clusters", "0008_topic_name_as_long_as_kafkas"),
    ]

    operations = [
        migrations.AddField(
            model_name="cluster",
            name="lease_token",
            field=models.PositiveBigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="cluster",
            name="reconcile_ticket",
            field=models.CharField(blank=True, default="", max_length=32),
        ),
        migrations.AddField(
            model_name="cluster",
            name="reconcile_due_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="cluster",
            name="reconcile_wanted",
            field=models.BooleanField(default=False),
        ),
    ]
