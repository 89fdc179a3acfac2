"""Writes of the tenancy layer, by sub-domain. Keyword-only, atomic, and each one leaves an
audit event. Callers use ``tenants.services.<function>``; the modules say where each lives."""

from .accounts import (
    SIGNUP_LINK_LIFETIME,
    login_failure_record,
    login_lockout,
    signup_details,
    signup_request,
    signup_send_email,
    user_signup,
)
from .api_keys import MAX_API_KEY_LIFETIME_DAYS, api_key_create, api_key_revoke
from .invitations import (
    invitation_accept,
    invitation_create,
    invitation_decline,
    invitation_revoke,
    invitation_send_email,
)
from .organizations import (
    membership_change_role,
    membership_remove,
    organization_close,
    organization_create,
    organization_update,
)

__all__ = [
    "MAX_API_KEY_LIFETIME_DAYS",
    "SIGNUP_LINK_LIFETIME",
    "api_key_create",
    "api_key_revoke",
    "invitation_accept",
    "invitation_create",
    "invitation_decline",
    "invitation_revoke",
    "invitation_send_email",
    "login_failure_record",
    "login_lockout",
    "membership_change_role",
    "membership_remove",
    "organization_close",
    "organization_create",
    "organization_update",
    "signup_details",
    "signup_request",
    "signup_send_email",
    "user_signup",
]
