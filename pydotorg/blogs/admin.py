from django.contrib import admin

from .models import BlogEntry, Feed


@admin.register(Feed)
class FeedAdmin(admin.ModelAdmin):
    list_display = ["name", "feed_url", "is_active", "last_fetched", "last_error", "consecutive_failures"]
    list_filter = ["is_active", "last_fetched"]
    search_fields = ["name", "feed_url", "website_url"]
    readonly_fields = ["etag", "last_modified", "last_fetched", "last_error", "consecutive_failures"]


@admin.register(BlogEntry)
class BlogEntryAdmin(admin.ModelAdmin):
    list_display = ["title", "feed", "pub_date", "updated"]
    list_filter = ["feed", "pub_date"]
    search_fields = ["title", "summary", "content", "guid", "url"]
    date_hierarchy = "pub_date"
    list_select_related = ["feed"]
    raw_id_fields = ["feed"]
