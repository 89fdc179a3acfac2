from django.urls import path

from . import views

app_name = "tenants"

urlpatterns = [
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/signup/<str:token>/", views.signup_confirm, name="signup-confirm"),
    path("invitations/<str:token>/", views.invitation_respond, name="invitation"),
    path("orgs/<str:org>/", views.members, name="members"),
    path("orgs/<str:org>/leave/", views.leave, name="leave"),
    path(
        "orgs/<str:org>/members/<str:member_id>/role/",
        views.member_change_role,
        name="member-role",
    ),
    path(
        "orgs/<str:org>/members/<str:member_id>/remove/",
        views.member_remove,
        name="member-remove",
    ),
    path("orgs/<str:org>/invitations/", views.invitations, name="invitations"),
    path(
        "orgs/<str:org>/invitations/<str:invitation_id>/revoke/",
        views.invitation_revoke,
        name="invitation-revoke",
    ),
    path("orgs/<str:org>/api-keys/", views.api_keys, name="api-keys"),
    path(
        "orgs/<str:org>/api-keys/<str:key_id>/revoke/",
        views.api_key_revoke,
        name="api-key-revoke",
    ),
    path("orgs/<str:org>/audit/", views.audit, name="audit"),
]
