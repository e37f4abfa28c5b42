from django.contrib import admin

from .models import OutboxEntry


@admin.register(OutboxEntry)
class OutboxEntryAdmin(admin.ModelAdmin):
    list_display = ["job_key", "queue", "created", "attempts", "retry_at", "last_error"]
    search_fields = ["job_key"]
    readonly_fields = ["job_key", "queue", "payload", "created", "attempts", "retry_at", "last_error"]

    def has_add_permission(self, request) -> bool:
        # Entries come only from enqueue_on_commit, inside the caller's transaction.
        return False
