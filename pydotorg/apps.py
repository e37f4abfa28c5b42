from django.apps import AppConfig


class SiteConfig(AppConfig):
    """The site's shell: the shared layout, home and error pages, static files, and serving checks."""

    name = "pydotorg"
    label = "pydotorg"
    verbose_name = "python.org site"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the deploy checks
