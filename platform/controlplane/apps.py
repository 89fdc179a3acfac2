import os

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ControlPlaneConfig(AppConfig):
    name = "controlplane"
    verbose_name = "Control plane"

    def ready(self) -> None:
        from django.conf import settings

        from . import fleet, metrics

        fleet.register()
        metrics.register()

        # kombu's file-system transport expects its folders to exist.
        for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
            folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get(key)
            if folder:
                os.makedirs(folder, exist_ok=True)
        if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
            os.makedirs(os.path.dirname(settings.DATABASES["default"]["NAME"]), exist_ok=True)


class SluiceAdminConfig(admin_apps.AdminConfig):
    """Django's admin, on Sluice's admin site (the fleet dashboard)."""

    default = False  # named in INSTALLED_APPS; ControlPlaneConfig is this module's own
    default_site = "controlplane.admin_site.SluiceAdminSite"
