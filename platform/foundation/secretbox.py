"""Symmetric encryption of secrets Sluice must read back later (Fernet: AES-128-CBC with an
HMAC), under a key ring of its own: ``SLUICE_SECRETS_KEYS``, newest first, never the
session-signing key.

A value is sealed under the newest key and opened with any key of the ring, so keys rotate
without downtime: put the new key first, re-seal (``manage.py reseal_secrets``), then drop the
old one. Columns holding sealed values are ``SealedField``s, which is how re-sealing finds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.conf import settings
from django.db import models, transaction

SETTING = "SLUICE_SECRETS_KEYS"


class Unreadable(Exception):
    """No key of the ring opens this value: the key that sealed it was dropped or lost."""


class SealedField(models.BinaryField):
    """A column holding ``seal()``ed bytes. Declaring it (rather than a bare BinaryField) is
    what makes ``reseal_all`` re-seal it when the keys rotate."""


@cache
def _ring(keys: tuple[str, ...]) -> tuple[MultiFernet, Fernet]:
    fernets = [Fernet(key) for key in keys]
    return MultiFernet(fernets), fernets[0]


def _keys() -> tuple[MultiFernet, Fernet]:
    return _ring(tuple(getattr(settings, SETTING)))


def seal(plaintext: str) -> bytes:
    ring, _newest = _keys()
    return ring.encrypt(plaintext.encode())


def unseal(token: bytes) -> str:
    ring, _newest = _keys()
    try:
        return ring.decrypt(bytes(token)).decode()
    except InvalidToken:
        raise Unreadable(f"no key of {SETTING} opens this value") from None


# Re-sealing under the newest key --------------------------------------------------------------


@dataclass
class ResealReport:
    resealed: int = 0  # sealed under an older key, now under the newest
    current: int = 0  # already under the newest key: left as they were
    unreadable: list[str] = field(default_factory=list)  # "app.Model.field pk=…": no key opens


def sealed_fields() -> list[tuple[type[models.Model], str]]:
    return [
        (model, f.attname)
        for model in apps.get_models()
        for f in model._meta.concrete_fields
        if isinstance(f, SealedField)
    ]


def reseal_all(*, batch_size: int = 500) -> ResealReport:
    """Fleet-wide (every tenant's rows, through each model's base manager): re-seal every
    sealed value under the newest key. Idempotent: a value the newest key already opens is not
    rewritten. Each batch is its own transaction, its rows locked while they are rewritten."""
    ring, newest = _keys()
    report = ResealReport()
    for model, column in sealed_fields():
        rows = model._base_manager.exclude(**{f"{column}__isnull": True}).order_by("pk")
        last_pk = None
        while True:
            with transaction.atomic():
                batch = rows if last_pk is None else rows.filter(pk__gt=last_pk)
                batch = list(batch.select_for_update().values_list("pk", column)[:batch_size])
                for pk, token in batch:
                    _reseal_one(model, column, pk, bytes(token), ring, newest, report)
            if len(batch) < batch_size:
                break
            last_pk = batch[-1][0]
    return report


def _reseal_one(model, column, pk, token, ring, newest, report) -> None:
    try:
        newest.decrypt(token)
    except InvalidToken:
        pass
    else:
        report.current += 1
        return
    try:
        resealed = ring.rotate(token)
    except InvalidToken:
        report.unreadable.append(f"{model._meta.label}.{column} pk={pk}")
        return
    model._base_manager.filter(pk=pk).update(**{column: resealed})
    report.resealed += 1
