from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class SiteConfig(AppConfig):
    """The site's shell: the shared layout, home and error pages, static files, and serving checks."""

    name = "pydotorg"
    label = "pydotorg"
    verbose_name = "python.org site"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the deploy checks


class SiteAdminConfig(admin_apps.AdminConfig):
    """``django.contrib.admin`` whose default site is the site's own (``pydotorg.admin_base.SiteAdmin``)."""

    default = False  # "pydotorg" itself is SiteConfig
    default_site = "pydotorg.admin_base.SiteAdmin"
