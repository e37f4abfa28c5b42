from django.contrib import admin

from ..models import TaskQueue


@admin.register(TaskQueue)
class TaskQueueAdmin(admin.ModelAdmin):
    """The admin index entry "Task queues": the queue dashboard, not a table."""

    def has_module_permission(self, request) -> bool:
        return request.user.has_perm("tasks_app.view_dashboard")

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("tasks_app.view_dashboard")

    def has_add_permission(self, request) -> bool:
        # "Add" is the dashboard's enqueue form.
        return request.user.has_perms(["tasks_app.view_dashboard", "tasks_app.manage_jobs"])

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        # Imported when the URLs are, not at start-up: a worker process never loads the views.
        from .urls import get_urls

        return get_urls(self)
