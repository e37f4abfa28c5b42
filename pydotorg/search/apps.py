from django.apps import AppConfig


class SearchConfig(AppConfig):
    name = "pydotorg.search"
    label = "search"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, signals  # noqa: F401  (checks registers the system checks)

        signals.connect()
