"""Responses kept before Idempotency-Key records withheld secrets: null the secrets they hold
(a new API key's ``key``, a credential's ``password`` and ``sasl_jaas_config``), as a replay
of a response kept today would."""

import json

from django.db import migrations

SECRET_FIELDS = (("key",), ("credential", "password"), ("credential", "sasl_jaas_config"))


def withhold(body: bytes) -> tuple[bytes, list[str]]:
    try:
        document = json.loads(body)
    except ValueError:
        return body, []
    withheld = []
    for *parents, name in SECRET_FIELDS:
        node = document
        for parent in parents:
            node = node.get(parent) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get(name), str):
            node[name] = None
            withheld.append(".".join((*parents, name)))
    return json.dumps(document, separators=(",", ":")).encode(), withheld


def forwards(apps, schema_editor):
    IdempotencyRecord = apps.get_model("tenants", "IdempotencyRecord")
    for record in IdempotencyRecord.unscoped_all_tenants.exclude(response_body=None).iterator():
        body, withheld = withhold(bytes(record.response_body))
        if withheld:
            headers = {
                **record.response_headers,
                "Cache-Control": "no-store",
                "Secret-Withheld": ", ".join(withheld),
            }
            IdempotencyRecord.unscoped_all_tenants.filter(pk=record.pk).update(
                response_body=body, response_headers=headers
            )


class Migration(migrations.Migration):
    dependencies = [("tenants", "0003_invitation_expired_state")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
