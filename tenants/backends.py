"""Password sign-in, throttled: every sign-in form (the web UI's, the admin's) goes through it."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from . import services


def client_address(request) -> str | None:
    """The address the request came from, as the web server saw it."""
    return None if request is None else request.META.get("REMOTE_ADDR") or None


class ThrottledModelBackend(ModelBackend):
    """Django's e-mail and password check, refused outright while the account or the client
    address is locked out after too many failures; each failure is counted."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        address = client_address(request)
        locked_for = services.login_lockout(email=username, client_address=address)
        if locked_for:
            if request is not None:
                request.login_locked_for = locked_for  # for the form's message
            # The password is not even checked; PermissionDenied stops every backend.
            raise PermissionDenied
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            services.login_failure_record(email=username, client_address=address)
        return user
