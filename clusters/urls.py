from django.urls import path

from . import views

app_name = "clusters"

CLUSTER = "orgs/<str:org>/clusters/<str:cluster_id>/"

urlpatterns = [
    path("orgs/<str:org>/clusters/", views.cluster_list, name="list"),
    path(CLUSTER, views.cluster_detail, name="detail"),
    path(f"{CLUSTER}rename/", views.cluster_rename, name="rename"),
    path(f"{CLUSTER}resize/", views.cluster_resize, name="resize"),
    path(f"{CLUSTER}change-type/", views.cluster_change_type, name="change-type"),
    path(f"{CLUSTER}retry/", views.cluster_retry, name="retry"),
    path(f"{CLUSTER}delete/", views.cluster_delete, name="delete"),
    path(f"{CLUSTER}topics/", views.topic_create, name="topic-create"),
    path(
        f"{CLUSTER}topics/<str:topic_name>/partitions/",
        views.topic_partitions,
        name="topic-partitions",
    ),
    path(f"{CLUSTER}topics/<str:topic_name>/delete/", views.topic_delete, name="topic-delete"),
    path(f"{CLUSTER}credentials/", views.credential_create, name="credential-create"),
    path(
        f"{CLUSTER}credentials/<str:credential_id>/rotate/",
        views.credential_rotate,
        name="credential-rotate",
    ),
    path(
        f"{CLUSTER}credentials/<str:credential_id>/delete/",
        views.credential_delete,
        name="credential-delete",
    ),
]
