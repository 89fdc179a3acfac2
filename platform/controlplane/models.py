from django.db import models


class ServiceHeartbeat(models.Model):
    """When each background service was last seen doing work (beat → worker round trips)."""

    service = models.CharField(max_length=64, unique=True)
    seen_at = models.DateTimeField()
    hostname = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["service"]

    def __str__(self) -> str:
        return f"{self.service} @ {self.seen_at:%Y-%m-%d %H:%M:%S}"
