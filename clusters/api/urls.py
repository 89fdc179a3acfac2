from django.urls import include, path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter(trailing_slash=True)
router.register("clusters", views.ClusterViewSet, basename="cluster")
router.register("operations", views.OperationViewSet, basename="operation")

cluster_router = SimpleRouter(trailing_slash=True)
cluster_router.register("topics", views.TopicViewSet, basename="topic")
cluster_router.register("credentials", views.CredentialViewSet, basename="credential")

urlpatterns = [
    path("catalog/", views.CatalogView.as_view(), name="catalog"),
    path("orgs/<public_id:org>/", include(router.urls)),
    path("orgs/<public_id:org>/clusters/<public_id:cluster>/", include(cluster_router.urls)),
    path(
        "orgs/<public_id:org>/clusters/<public_id:cluster>/consumer-groups/",
        views.ConsumerGroupListView.as_view(),
        name="consumer-group-list",
    ),
    path(
        "orgs/<public_id:org>/clusters/<public_id:cluster>/consumer-groups/<group_name:group>/",
        views.ConsumerGroupView.as_view(),
        name="consumer-group-detail",
    ),
    path(
        "orgs/<public_id:org>/clusters/<public_id:cluster>/consumer-groups/<group_name:group>/"
        "reset-offsets/",
        views.ConsumerGroupResetView.as_view(),
        name="consumer-group-reset-offsets",
    ),
]
