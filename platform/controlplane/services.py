import socket

from django.utils import timezone

from .models import ServiceHeartbeat


def heartbeat_record(*, service: str) -> ServiceHeartbeat:
    heartbeat, _ = ServiceHeartbeat.objects.update_or_create(
        service=service,
        defaults={"seen_at": timezone.now(), "hostname": socket.gethostname()},
    )
    return heartbeat
