"""The self-service web UI of clusters, by page group: the list and a cluster's own changes,
its page, its topics, its credentials."""
