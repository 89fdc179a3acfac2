"""Tiers, cells, clusters, topics, credentials, quotas, the reconciler and the
data-plane drivers."""
