import os

from django.apps import AppConfig


class ControlPlaneConfig(AppConfig):
    name = "controlplane"
    verbose_name = "Control plane"

    def ready(self) -> None:
        from django.conf import settings

        # kombu's file-system transport expects its folders to exist.
        for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
            folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get(key)
            if folder:
                os.makedirs(folder, exist_ok=True)
        if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
            os.makedirs(os.path.dirname(settings.DATABASES["default"]["NAME"]), exist_ok=True)
