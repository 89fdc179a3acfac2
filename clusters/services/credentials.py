"""Writes of a cluster's credentials (SCRAM-SHA-512 principals and their client quotas): each
one is a new generation of the cluster (lifecycle)."""

from __future__ import annotations

import secrets

from django.db import transaction
from django.utils import timezone

from foundation import secretbox
from foundation.errors import InvalidInput
from tenants.audit import Actor, audit_record, snapshot

from .. import lifecycle, naming
from ..guards import CREDENTIAL_CREATE, Creation, check_creation
from ..models import MB, Cluster, Credential, Operation
from .clusters import clean_name, retire_item, writable_cluster, writable_item
from .quotas import exceeded, locked_quota


def _new_password() -> str:
    return secrets.token_urlsafe(32)


def _check_rates(cluster: Cluster, rates: dict) -> dict:
    tier = cluster.tier
    ceilings = {
        "producer_byte_rate": tier.ingress_mbps * MB * cluster.capacity_units,
        "consumer_byte_rate": tier.egress_mbps * MB * cluster.capacity_units,
        "request_percentage": 100,
    }
    for field, value in rates.items():
        if value is None:
            continue
        if not 1 <= value <= ceilings[field]:
            raise InvalidInput(f"{field} is 1 to {ceilings[field]} on this cluster", field=field)
    return rates


@transaction.atomic
def credential_create(
    *,
    cluster: Cluster,
    actor: Actor,
    name: str,
    producer_byte_rate: int | None = None,
    consumer_byte_rate: int | None = None,
    request_percentage: int | None = None,
) -> tuple[Credential, str, Operation]:
    """A SCRAM-SHA-512 principal. Returns it with its password (shown once) and the Operation
    that puts it in the data plane."""
    cluster = writable_cluster(cluster)
    name = clean_name(name, of="Credential", longest=100)
    check_creation(Creation.within(cluster, CREDENTIAL_CREATE))
    rates = _check_rates(
        cluster,
        {
            "producer_byte_rate": producer_byte_rate,
            "consumer_byte_rate": consumer_byte_rate,
            "request_percentage": request_percentage,
        },
    )
    quota = locked_quota(cluster.organization)
    live = Credential.objects.filter(deleted_at__isnull=True)
    in_cluster = live.filter(cluster=cluster).count()
    if in_cluster + 1 > cluster.tier.max_credentials:
        raise exceeded(
            limit="credentials_per_cluster",
            maximum=cluster.tier.max_credentials,
            current=in_cluster,
            requested=1,
        )
    in_org = live.filter(organization=cluster.organization).count()
    if in_org + 1 > quota.max_credentials:
        raise exceeded(
            limit="credentials", maximum=quota.max_credentials, current=in_org, requested=1
        )
    password = _new_password()
    credential = Credential(organization=cluster.organization, cluster=cluster, name=name, **rates)
    credential.username = naming.credential_username(cluster.public_id, credential.public_id)
    credential.password_encrypted = secretbox.seal(password)
    credential.save()
    event = audit_record(
        organization=cluster.organization,
        actor=actor,
        action="credential.created",
        target=credential,
        after={"name": name, "username": credential.username, **rates},
    )
    operation = lifecycle.request_change(
        cluster, kind="credential.create", actor=actor, event=event
    )
    return credential, password, operation


@transaction.atomic
def credential_rotate(*, credential: Credential, actor: Actor) -> tuple[Credential, str, Operation]:
    cluster, credential = writable_item(credential)
    password = _new_password()
    credential.password_encrypted = secretbox.seal(password)
    credential.rotated_at = timezone.now()
    credential.save(update_fields=["password_encrypted", "rotated_at"])
    event = audit_record(
        organization=cluster.organization,
        actor=actor,
        action="credential.rotated",
        target=credential,
    )
    operation = lifecycle.request_change(
        cluster, kind="credential.rotate", actor=actor, event=event
    )
    return credential, password, operation


@transaction.atomic
def credential_update_quotas(
    *, credential: Credential, actor: Actor, **rates: int | None
) -> tuple[Credential, Operation]:
    cluster, credential = writable_item(credential)
    before = snapshot(credential, list(rates))
    for field, value in _check_rates(cluster, rates).items():
        setattr(credential, field, value)
    credential.save()
    event = audit_record(
        organization=cluster.organization,
        actor=actor,
        action="credential.quotas_changed",
        target=credential,
        before=before,
        after=snapshot(credential, list(rates)),
    )
    operation = lifecycle.request_change(
        cluster, kind="credential.update", actor=actor, event=event
    )
    return credential, operation


@transaction.atomic
def credential_delete(*, credential: Credential, actor: Actor) -> Operation:
    return retire_item(
        credential,
        actor=actor,
        action="credential.deleted",
        kind="credential.delete",
        before={"name": credential.name, "username": credential.username},
    )
