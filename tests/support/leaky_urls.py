"""The real URLconf plus one endpoint written without the tenancy base class, as a careless
newcomer might: it serves any organization's members to any logged-in user. The isolation walk
must catch it."""

from django.urls import path
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.urls import urlpatterns as real_urlpatterns
from tenants.models import Membership


class LeakyMemberEmailsView(APIView):
    permission_classes = [IsAuthenticated]

    def get(self, request, org):
        members = Membership.unscoped_all_tenants.filter(organization__public_id=org)
        return Response([m.user.email for m in members.select_related("user")])


urlpatterns = [
    path("api/v1/orgs/<str:org>/member-emails/", LeakyMemberEmailsView.as_view(), name="leaky"),
    *real_urlpatterns,
]
