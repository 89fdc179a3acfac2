from django.urls import path

from .views import clusters, connect, consumer_groups, credentials, live, topic_page, topics

app_name = "clusters"

CLUSTER = "orgs/<str:org>/clusters/<str:cluster_id>/"

urlpatterns = [
    path("orgs/<str:org>/clusters/", clusters.cluster_list, name="list"),
    path(CLUSTER, clusters.cluster_detail, name="detail"),
    path(f"{CLUSTER}metrics/", live.cluster_metrics, name="live-metrics"),
    path(f"{CLUSTER}rename/", clusters.cluster_rename, name="rename"),
    path(f"{CLUSTER}resize/", clusters.cluster_resize, name="resize"),
    path(f"{CLUSTER}change-tier/", clusters.cluster_change_tier, name="change-tier"),
    path(f"{CLUSTER}retry/", clusters.cluster_retry, name="retry"),
    path(f"{CLUSTER}delete/", clusters.cluster_delete, name="delete"),
    path(f"{CLUSTER}topics/", topics.topic_create, name="topic-create"),
    path(
        f"{CLUSTER}topics/<str:topic_name>/partitions/",
        topics.topic_partitions,
        name="topic-partitions",
    ),
    path(f"{CLUSTER}topics/<str:topic_name>/", topic_page.topic_detail, name="topic-detail"),
    path(
        f"{CLUSTER}topics/<str:topic_name>/settings/",
        topic_page.topic_settings,
        name="topic-settings",
    ),
    path(
        f"{CLUSTER}topics/<str:topic_name>/metrics/",
        live.topic_metrics,
        name="topic-live-metrics",
    ),
    path(f"{CLUSTER}topics/<str:topic_name>/delete/", topics.topic_delete, name="topic-delete"),
    path(f"{CLUSTER}client.properties", connect.client_properties, name="client-properties"),
    path(f"{CLUSTER}consumer-groups/", consumer_groups.group_list, name="consumer-groups"),
    path(
        f"{CLUSTER}consumer-groups/<group_name:group>/",
        consumer_groups.group_detail,
        name="consumer-group",
    ),
    path(f"{CLUSTER}credentials/", credentials.credential_create, name="credential-create"),
    path(
        f"{CLUSTER}credentials/<str:credential_id>/rotate/",
        credentials.credential_rotate,
        name="credential-rotate",
    ),
    path(
        f"{CLUSTER}credentials/<str:credential_id>/delete/",
        credentials.credential_delete,
        name="credential-delete",
    ),
]
