from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """``tasks_app.dashboard`` in INSTALLED_APPS: the "Task queues" dashboard in the Django admin (queues,
    workers, jobs, actions), with ``stats.json`` and, with ``tasks_app.metrics``, ``metrics``. Its URLs
    hang off the ``TaskQueue`` model admin (``admin.py``), so it appears in the admin index.

    Its permissions stay on ``tasks_app.TaskQueue`` (``tasks_app.view_dashboard``,
    ``tasks_app.manage_jobs``), so grants survive the dashboard being removed and added again."""

    name = "tasks_app.dashboard"
    label = "tasks_app_dashboard"
    verbose_name = "Task queue dashboard"
