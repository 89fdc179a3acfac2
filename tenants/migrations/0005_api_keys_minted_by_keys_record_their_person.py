"""Keys minted by a key used to record no creator. A key now acts for a person and ends with
their membership, so each such key gets the person behind the key that minted it, found through
the audit trail; one whose chain reaches no person keeps none (and no longer works)."""

from django.db import migrations

MAX_CHAIN = 100


def record_the_person_behind(apps, schema_editor):
    ApiKey = apps.get_model("tenants", "ApiKey")
    AuditEvent = apps.get_model("tenants", "AuditEvent")
    minted_by = dict(
        AuditEvent.objects.filter(
            action="api_key.created", target_type="api_key", actor_api_key_id__isnull=False
        ).values_list("target_id", "actor_api_key_id")
    )
    keys = {key.pk: key for key in ApiKey.objects.all()}
    for key in keys.values():
        if key.created_by_id is not None:
            continue
        minter, seen = key, 0
        while minter is not None and minter.created_by_id is None and seen < MAX_CHAIN:
            minter = keys.get(minted_by.get(minter.public_id))
            seen += 1
        if minter is not None and minter.created_by_id is not None:
            ApiKey.objects.filter(pk=key.pk).update(created_by_id=minter.created_by_id)


class Migration(migrations.Migration):
    dependencies = [("tenants", "0004_idempotency_records_without_secrets")]

    operations = [migrations.RunPython(record_the_person_behind, migrations.RunPython.noop)]
