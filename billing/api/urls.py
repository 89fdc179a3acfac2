from django.urls import path

from . import views

urlpatterns = [
    path(
        "orgs/<public_id:org>/usage/",
        views.OrganizationUsageView.as_view(),
        name="organization-usage",
    ),
    path(
        "orgs/<public_id:org>/clusters/<public_id:cluster>/usage/",
        views.ClusterUsageView.as_view(),
        name="cluster-usage",
    ),
]
