from django.contrib import admin

from pydotorg.admin_base import SiteModelAdmin

from .models import Page


@admin.register(Page)
class PageAdmin(SiteModelAdmin):
    list_display = ["title", "path", "content_format", "is_published", "updated"]
    list_filter = ["is_published", "content_format", "updated"]
    search_fields = ["title", "path", "keywords", "description", "content"]
    date_hierarchy = "updated"
