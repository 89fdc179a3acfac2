import socket

from celery import shared_task

from . import services


@shared_task(name="controlplane.tasks.ping")
def ping() -> dict:
    """Proves a worker is consuming: the caller waits for this answer."""
    return {"pong": True, "hostname": socket.gethostname()}


@shared_task(name="controlplane.tasks.record_heartbeat")
def record_heartbeat(service: str) -> None:
    services.heartbeat_record(service=service)
