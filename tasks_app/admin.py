from django.contrib import admin

from .models import OutboxEntry, TaskQueue


@admin.register(OutboxEntry)
class OutboxEntryAdmin(admin.ModelAdmin):
    list_display = ["job_key", "queue", "created", "attempts", "retry_at", "last_error"]
    search_fields = ["job_key"]
    readonly_fields = ["job_key", "queue", "payload", "created", "attempts", "retry_at", "last_error"]

    def has_add_permission(self, request) -> bool:
        # Entries come only from enqueue_on_commit, inside the caller's transaction.
        return False


@admin.register(TaskQueue)
class TaskQueueAdmin(admin.ModelAdmin):
    """The admin index entry "Task queues": the queue dashboard (tasks_app.dashboard), not a table."""

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
        from .dashboard.urls import get_urls

        return get_urls(self)
