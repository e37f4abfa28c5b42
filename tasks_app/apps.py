from django.apps import AppConfig
from django.core.signals import setting_changed
from django.utils.module_loading import autodiscover_modules


class TasksAppConfig(AppConfig):
    name = "tasks_app"
    verbose_name = "Task queues"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from .backends import runner  # noqa: F401  (registers the django.tasks runner task)
        from .registry import register_task_functions

        # Each installed app's tasks.py, found the way admin.py is.
        autodiscover_modules("tasks")
        register_task_functions()
        setting_changed.connect(_saq_changed, dispatch_uid="tasks_app.saq_changed")


def _saq_changed(*, setting: str, **kwargs) -> None:
    """``SAQ`` changed (a test's ``settings``): queues are made again, and ``SAQ["MODE"]`` read again."""
    if setting == "SAQ":
        from .enqueueing import connections, diversion

        connections.forget_all()
        diversion.settings_changed()
