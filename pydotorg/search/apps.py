from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class SearchConfig(AppConfig):
    name = "pydotorg.search"
    label = "search"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, signals  # noqa: F401  (checks registers the system checks)

        # Each installed app's search.py declares its document type (as admin.py registers its
        # ModelAdmins); the registry keeps the order of INSTALLED_APPS.
        autodiscover_modules("search")
        signals.connect()
