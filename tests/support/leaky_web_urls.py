"""The real URLconf plus one organization page written without ``organization_view``, as a
careless newcomer might: it shows any organization's members to any signed-in user. The web
isolation walk must catch it."""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.urls import path

from controlplane.urls import urlpatterns as real_urlpatterns
from tenants.models import Membership


@login_required
def leaky_member_emails(request, org):
    members = Membership.unscoped_all_tenants.filter(organization__public_id=org)
    return HttpResponse(", ".join(m.user.email for m in members.select_related("user")))


urlpatterns = [
    path("orgs/<str:org>/member-emails/", leaky_member_emails, name="leaky-web"),
    *real_urlpatterns,
]
