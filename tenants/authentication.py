"""``Authorization: Bearer slk_…`` API keys for Django REST Framework."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from rest_framework import authentication, exceptions

from . import selectors, tokens
from .models import ApiKey

# last_used_at is a hint for people, not an access log: write it at most this often.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyUser(AnonymousUser):
    """The request's user when an API key authenticates it: no person, but authenticated."""

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key

    @property
    def is_authenticated(self) -> bool:
        return True

    def __str__(self) -> str:
        return f"api-key:{self.api_key.public_id}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        credential = credential.strip()
        prefix = tokens.api_key_prefix(credential)
        if prefix is None:
            raise exceptions.AuthenticationFailed("Malformed API key")
        api_key = selectors.api_key_for_authentication(prefix=prefix)
        if api_key is None or not tokens.matches(credential, api_key.key_digest):
            raise exceptions.AuthenticationFailed("Invalid API key")
        if api_key.revoked_at is not None or api_key.organization.is_closed:
            raise exceptions.AuthenticationFailed("This API key was revoked")
        if api_key.expires_at is not None and api_key.expires_at <= timezone.now():
            raise exceptions.AuthenticationFailed("This API key has expired")
        if api_key.creator_role is None:
            # A key acts for its creator: it ends with their membership.
            raise exceptions.AuthenticationFailed(
                "This API key's creator is no longer a member of the organization"
            )
        self._touch(api_key)
        return ApiKeyUser(api_key), api_key

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="sluice"'

    @staticmethod
    def _touch(api_key: ApiKey) -> None:
        now = timezone.now()
        if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
            ApiKey.unscoped_all_tenants.filter(pk=api_key.pk).update(last_used_at=now)
            api_key.last_used_at = now
