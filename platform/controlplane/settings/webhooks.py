"""Webhooks Sluice posts to its customers' endpoints (budget alerts): how long one post may
take, how often it is tried, and which addresses an endpoint may resolve to."""

import ipaddress

from django.core.exceptions import ImproperlyConfigured

from .environment import env

# Seconds to connect and to wait for the endpoint's answer.
SLUICE_WEBHOOK_TIMEOUT_SECONDS = env.float("SLUICE_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# Tries of one event before it is given up (the waits double from 30 s, up to an hour).
SLUICE_WEBHOOK_MAX_ATTEMPTS = env.int("SLUICE_WEBHOOK_MAX_ATTEMPTS", default=8)
# How long a worker holds a delivery it claimed: longer than one post may take.
SLUICE_WEBHOOK_LEASE_SECONDS = env.float("SLUICE_WEBHOOK_LEASE_SECONDS", default=60.0)
# Networks a webhook's host may resolve to although they are private, loopback, link-local or
# otherwise not the public internet (comma-separated, e.g. "127.0.0.1/32" for a test endpoint).
# Empty (the default): every such address is refused, when the URL is saved and at each post.
SLUICE_WEBHOOK_ALLOWED_PRIVATE_NETWORKS = tuple(
    env.list("SLUICE_WEBHOOK_ALLOWED_PRIVATE_NETWORKS", default=[])
)
for _network in SLUICE_WEBHOOK_ALLOWED_PRIVATE_NETWORKS:
    try:
        ipaddress.ip_network(_network)
    except ValueError:
        raise ImproperlyConfigured(
            f"SLUICE_WEBHOOK_ALLOWED_PRIVATE_NETWORKS: {_network!r} is not a network"
            " (e.g. 127.0.0.1/32)"
        ) from None
# Plain http:// endpoints (production refuses them unless this is set).
SLUICE_WEBHOOK_ALLOW_HTTP = env.bool("SLUICE_WEBHOOK_ALLOW_HTTP", default=True)
