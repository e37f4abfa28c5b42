from django.contrib import admin

from .models import Page


@admin.register(Page)
class PageAdmin(admin.ModelAdmin):
    list_display = ["title", "path", "content_format", "is_published", "updated"]
    list_filter = ["is_published", "content_format", "updated"]
    search_fields = ["title", "path", "keywords", "description", "content"]
    date_hierarchy = "updated"
