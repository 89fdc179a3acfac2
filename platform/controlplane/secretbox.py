"""Symmetric encryption of secrets Sluice must read back later (Fernet: AES-128-CBC with an
HMAC). The key comes from SLUICE_SECRETS_KEY, or is derived from DJANGO_SECRET_KEY."""

import base64
from functools import cache

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


@cache
def _fernet(material: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"sluice-secretbox-v1").derive(
        material.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def _box() -> Fernet:
    return _fernet(settings.SLUICE_SECRETS_KEY or settings.SECRET_KEY)


def seal(plaintext: str) -> bytes:
    return _box().encrypt(plaintext.encode())


def unseal(token: bytes) -> str:
    return _box().decrypt(bytes(token)).decode()
