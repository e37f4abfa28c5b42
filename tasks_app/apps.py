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
        setting_changed.connect(_forget_queues_on_change, dispatch_uid="tasks_app.forget_queues")


def _forget_queues_on_change(*, setting: str, **kwargs) -> None:
    if setting == "SAQ":
        from .enqueueing.connections import forget_all

        forget_all()
