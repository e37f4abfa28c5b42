from django.apps import AppConfig


class BlogsConfig(AppConfig):
    name = "pydotorg.blogs"
    label = "blogs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
