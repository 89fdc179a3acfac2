from django.urls import path

from .views import accounts, api_keys, audit_log, closing, organization

app_name = "tenants"

urlpatterns = [
    path("accounts/signup/", accounts.signup, name="signup"),
    path("accounts/signup/sent/", accounts.signup_sent, name="signup-sent"),
    path("accounts/signup/<str:token>/", accounts.signup_confirm, name="signup-confirm"),
    path("invitations/<str:token>/", accounts.invitation_respond, name="invitation"),
    path("orgs/<str:org>/", organization.members, name="members"),
    path("orgs/<str:org>/leave/", organization.leave, name="leave"),
    path(
        "orgs/<str:org>/members/<str:member_id>/role/",
        organization.member_change_role,
        name="member-role",
    ),
    path(
        "orgs/<str:org>/members/<str:member_id>/remove/",
        organization.member_remove,
        name="member-remove",
    ),
    path("orgs/<str:org>/invitations/", organization.invitations, name="invitations"),
    path(
        "orgs/<str:org>/invitations/<str:invitation_id>/revoke/",
        organization.invitation_revoke,
        name="invitation-revoke",
    ),
    path("orgs/<str:org>/api-keys/", api_keys.api_keys, name="api-keys"),
    path(
        "orgs/<str:org>/api-keys/<str:key_id>/revoke/",
        api_keys.api_key_revoke,
        name="api-key-revoke",
    ),
    path("orgs/<str:org>/audit/", audit_log.audit, name="audit"),
    path("orgs/<str:org>/settings/", closing.organization_settings, name="settings"),
]
