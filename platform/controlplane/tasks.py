import logging
import socket

from celery import shared_task

from . import services

logger = logging.getLogger(__name__)


@shared_task(name="controlplane.tasks.ping")
def ping() -> dict:
    """Proves a worker is consuming: the caller waits for this answer."""
    logger.info("pong")
    return {"pong": True, "hostname": socket.gethostname()}


@shared_task(name="controlplane.tasks.record_heartbeat")
def record_heartbeat(service: str) -> None:
    services.heartbeat_record(service=service)
