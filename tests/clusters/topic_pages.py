"""What the topic page's tests share: the page's URL (the fixtures ``owner`` and ``topic`` are in
this folder's conftest)."""

from __future__ import annotations


def url(topic, tail: str = "") -> str:
    cluster = topic.cluster
    base = f"/orgs/{cluster.organization.public_id}/clusters/{cluster.public_id}"
    return f"{base}/topics/{topic.name}/{tail}"
