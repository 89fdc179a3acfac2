from django.urls import include, path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter(trailing_slash=True)
router.register("members", views.MemberViewSet, basename="member")
router.register("invitations", views.InvitationViewSet, basename="invitation")
router.register("api-keys", views.ApiKeyViewSet, basename="api-key")
router.register("audit-events", views.AuditEventViewSet, basename="audit-event")

urlpatterns = [
    path("orgs/", views.OrganizationListView.as_view(), name="organization-list"),
    path(
        "orgs/<public_id:org>/", views.OrganizationDetailView.as_view(), name="organization-detail"
    ),
    path(
        "orgs/<public_id:org>/membership/", views.MyMembershipView.as_view(), name="my-membership"
    ),
    path("orgs/<public_id:org>/", include(router.urls)),
    path("invitations/accept/", views.InvitationAcceptView.as_view(), name="invitation-accept"),
    path("invitations/decline/", views.InvitationDeclineView.as_view(), name="invitation-decline"),
]
