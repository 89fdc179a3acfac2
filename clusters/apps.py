from django.apps import AppConfig


class ClustersConfig(AppConfig):
    name = "clusters"
    verbose_name = "Clusters"

    def ready(self) -> None:
        # The lifecycle queues reconciles by task name: the task is registered in every
        # process, not only where something happened to import its module.
        from . import tasks  # noqa: F401
