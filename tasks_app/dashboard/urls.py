"""The dashboard's URLs, mounted by the ``TaskQueue`` model admin (``admin.py``) under /admin/tasks_app/taskqueue/."""

from __future__ import annotations

from functools import partial, update_wrapper
from typing import TYPE_CHECKING

from django.apps import apps
from django.urls import URLPattern, path

from . import monitoring, views

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin


def get_urls(model_admin: ModelAdmin) -> list[URLPattern]:
    def admin_view(view):
        # admin_view: staff only (others go to the login page), never cached, CSRF-protected.
        bound = update_wrapper(partial(view, model_admin=model_admin), view)
        return model_admin.admin_site.admin_view(bound)

    return [
        # The changelist name makes the admin index link "Task queues" to the dashboard.
        path("", admin_view(views.index), name="tasks_app_taskqueue_changelist"),
        path("jobs/", admin_view(views.jobs), name="tasks_app_dashboard_jobs"),
        path("jobs/<str:queue>/<path:key>/", admin_view(views.job_detail), name="tasks_app_dashboard_job"),
        path("actions/retry/", admin_view(views.retry), name="tasks_app_dashboard_retry"),
        path("actions/abort/", admin_view(views.abort), name="tasks_app_dashboard_abort"),
        # Bulk and queue actions: each GET is a confirmation page saying what the POST will touch.
        path("queues/<str:queue>/", admin_view(views.queue_page), name="tasks_app_dashboard_queue"),
        path("queues/<str:queue>/bulk/", admin_view(views.bulk_action), name="tasks_app_dashboard_bulk"),
        path("queues/<str:queue>/pause/", admin_view(views.pause), name="tasks_app_dashboard_pause"),
        path("queues/<str:queue>/resume/", admin_view(views.resume), name="tasks_app_dashboard_resume"),
        # The admin's "Add" for Task queues: enqueue a job.
        path("enqueue/", admin_view(views.enqueue), name="tasks_app_taskqueue_add"),
        # Token-authenticated for monitors, so outside admin_view's login redirect. The token comes only
        # in the Authorization header: in a URL it would be written to every access log on the way.
        path("stats.json", monitoring.stats, name="tasks_app_dashboard_stats"),
        path("stats.json/<str:token>/", monitoring.token_in_url),
        *(
            [
                path("metrics", monitoring.metrics, name="tasks_app_dashboard_metrics"),
                path("metrics/<str:token>/", monitoring.token_in_url),
            ]
            if apps.is_installed("tasks_app.metrics")  # its counts and collector
            else []
        ),
    ]
