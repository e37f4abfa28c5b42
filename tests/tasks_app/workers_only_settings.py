"""A project that wants only workers: the tests' settings with ``tasks_app`` alone, no dashboard, no metrics."""

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [app for app in INSTALLED_APPS if app not in ("tasks_app.dashboard", "tasks_app.metrics")]
