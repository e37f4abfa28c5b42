from django.apps import AppConfig


class SampleAppConfig(AppConfig):
    """A tiny app whose tasks.py exercises tasks_app in the tests."""

    name = "tests.sampleapp"
    label = "sampleapp"
    default_auto_field = "django.db.models.BigAutoField"
