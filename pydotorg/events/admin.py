from django.contrib import admin

from .models import Event


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["title", "venue", "location", "starts_at", "ends_at", "all_day"]
    list_filter = ["all_day", "starts_at"]
    search_fields = ["title", "description", "venue", "location"]
    date_hierarchy = "starts_at"
