import logging

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.text import Truncator
from redis.exceptions import RedisError

from tasks_app import enqueue_sync

from .models import BlogEntry, Feed

logger = logging.getLogger(__name__)


@admin.register(Feed)
class FeedAdmin(admin.ModelAdmin):
    list_display = ["name", "feed_url", "is_active", "last_fetched", "short_last_error", "consecutive_failures"]
    list_filter = ["is_active", "last_fetched"]
    search_fields = ["name", "feed_url", "website_url"]
    readonly_fields = ["etag", "last_modified", "last_fetched", "last_error", "consecutive_failures"]
    actions = ["refresh_now"]

    @admin.display(description="last error", ordering="last_error")
    def short_last_error(self, feed: Feed) -> str:
        return Truncator(feed.last_error).chars(120)

    @admin.action(description="Refresh now")
    def refresh_now(self, request: HttpRequest, queryset: QuerySet[Feed]) -> None:
        queued = []
        for feed in queryset:
            try:
                # The key makes a second click a no-op while that feed's refresh is still pending.
                enqueue_sync("refresh_single_feed", key=f"refresh_single_feed:{feed.pk}", feed_url=feed.feed_url)
            except (RedisError, OSError, TimeoutError) as exc:
                logger.warning("Could not queue a refresh of feed %s: %s", feed.pk, exc)
                done = f" ({len(queued)} feed(s) were queued before it failed)" if queued else ""
                self.message_user(
                    request,
                    f"Could not queue the refresh: the task queue (Redis) is unreachable ({exc}){done}. "
                    "Check that Redis is running and try again.",
                    messages.ERROR,
                )
                return
            queued.append(feed.name)
        self.message_user(
            request,
            f"Queued a refresh of {len(queued)} feed(s): {', '.join(queued)}. "
            "Results appear in the last fetched and last error columns once the worker has run it.",
            messages.SUCCESS,
        )


@admin.register(BlogEntry)
class BlogEntryAdmin(admin.ModelAdmin):
    list_display = ["title", "feed", "pub_date", "updated"]
    list_filter = ["feed", "pub_date"]
    search_fields = ["title", "summary", "content", "guid", "url"]
    date_hierarchy = "pub_date"
    list_select_related = ["feed"]
    raw_id_fields = ["feed"]
