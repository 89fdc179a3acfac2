from django.urls import path

from . import views

urlpatterns = [
    path("orgs/<str:org>/usage/", views.OrganizationUsageView.as_view(), name="organization-usage"),
    path(
        "orgs/<str:org>/clusters/<str:cluster>/usage/",
        views.ClusterUsageView.as_view(),
        name="cluster-usage",
    ),
]
