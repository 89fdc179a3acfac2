from django.apps import AppConfig


class FoundationConfig(AppConfig):
    name = "foundation"
    verbose_name = "Foundation"

    def ready(self) -> None:
        from django.urls import register_converter

        from .ids import PublicIdConverter

        # Before any app's URLs are read: every tenant route names its objects by public id.
        register_converter(PublicIdConverter, "public_id")
