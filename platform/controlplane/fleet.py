"""The control plane's part of the operators' fleet dashboard (``clusters.fleet``'s registry,
from ``ControlPlaneConfig.ready``): the background services. Heartbeats are the rows beat's
``heartbeat`` task stamps through a worker (a beat → broker → worker round trip every 30 s);
workers are pinged (``control.ping``, bounded by the probe timeout); each queue's length is
read from the broker. The broker's answers are reused for ``SLUICE_FLEET_HEALTH_CACHE_SECONDS``."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from clusters.fleet import FleetSection, register_fleet_section
from foundation.text import error_summary

from .celery import app as celery_app
from .models import ServiceHeartbeat

# Beat stamps every 30 s: three missed stamps in a row is a stopped beat or no worker.
HEARTBEAT_LATE_AFTER = timedelta(seconds=90)
CACHE_KEY = "fleet:celery"


def background_services() -> dict:
    now = timezone.now()
    heartbeats = [
        {
            "service": heartbeat.service,
            "seen_at": heartbeat.seen_at,
            "hostname": heartbeat.hostname,
            "late": now - heartbeat.seen_at > HEARTBEAT_LATE_AFTER,
        }
        for heartbeat in ServiceHeartbeat.objects.all()
    ]
    broker = cache.get(CACHE_KEY)
    if broker is None:
        broker = {"workers": ping_workers(), "queues": queue_lengths()}
        cache.set(CACHE_KEY, broker, timeout=settings.SLUICE_FLEET_HEALTH_CACHE_SECONDS)
    return {"now": now, "heartbeats": heartbeats, **broker}


def ping_workers() -> dict:
    """The workers that answered a ping within the probe timeout, or why none could be
    asked."""
    try:
        replies = celery_app.control.ping(timeout=settings.SLUICE_FLEET_PROBE_TIMEOUT_SECONDS)
    except Exception as error:  # a broker that cannot broadcast is shown, not raised
        return {"names": [], "error": error_summary(error)}
    return {"names": sorted(name for reply in replies for name in reply), "error": ""}


def queue_names() -> list[str]:
    configured = [queue.name for queue in (celery_app.conf.task_queues or [])]
    return sorted({celery_app.conf.task_default_queue, *configured})


def queue_lengths() -> list[dict]:
    """Each queue's waiting messages, as the broker counts them (Redis: the list's length,
    every priority's)."""
    lengths = []
    try:
        with celery_app.connection_for_read() as connection:
            connection.ensure_connection(
                max_retries=1, interval_start=0, timeout=settings.SLUICE_FLEET_PROBE_TIMEOUT_SECONDS
            )
            channel = connection.default_channel
            for name in queue_names():
                lengths.append({"name": name, "length": _length(channel, name), "error": ""})
    except Exception as error:  # an unreachable broker is shown, not raised
        failure = error_summary(error)
        return [{"name": name, "length": None, "error": failure} for name in queue_names()]
    return lengths


def _length(channel, name: str) -> int:
    try:
        return channel.queue_declare(queue=name, passive=True).message_count
    except channel.connection.channel_errors:
        return 0  # never declared, or emptied and removed: nothing waits


def register() -> None:
    register_fleet_section(
        FleetSection(
            key="background",
            title="Background services",
            template="admin/controlplane/fleet_background.html",
            context=background_services,
            position=10,
        )
    )
