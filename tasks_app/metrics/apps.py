from django.apps import AppConfig


class MetricsConfig(AppConfig):
    """``tasks_app.metrics`` in INSTALLED_APPS: workers count their attempts in Redis, and the dashboard
    (if installed) serves them, with the queues' state, to Prometheus. Without it workers count nothing."""

    name = "tasks_app.metrics"
    label = "tasks_app_metrics"
    verbose_name = "Task queue metrics"

    def ready(self) -> None:
        from ..signals import building_worker
        from .recording import add_to_worker

        building_worker.connect(add_to_worker, dispatch_uid="tasks_app.metrics")
