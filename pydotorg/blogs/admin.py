import logging
from urllib.parse import urlsplit

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.text import Truncator
from redis.exceptions import RedisError

from tasks_app import enqueue_many

from .addresses import BlockedAddress, check_literal_host
from .conf import feed_settings
from .models import BlogEntry, Feed

logger = logging.getLogger(__name__)


class FeedForm(forms.ModelForm):
    class Meta:
        model = Feed
        fields = ["name", "website_url", "feed_url", "is_active"]

    def clean_feed_url(self) -> str:
        """Refuse a URL whose host is a literal non-public address; names are checked at every fetch."""
        url = self.cleaned_data["feed_url"]
        try:
            host = urlsplit(url).hostname or ""
        except ValueError:
            return url  # URLField has already said what is wrong with it
        try:
            check_literal_host(host, feed_settings().allowed_networks)
        except BlockedAddress as exc:
            raise forms.ValidationError(f"{exc} Use the feed's public address.", code="private_address") from None
        return url


@admin.register(Feed)
class FeedAdmin(admin.ModelAdmin):
    form = FeedForm
    list_display = [
        "name",
        "feed_url",
        "is_active",
        "last_fetched",
        "short_last_error",
        "consecutive_failures",
        "deferred_until",
    ]
    list_filter = ["is_active", "last_fetched"]
    search_fields = ["name", "feed_url", "website_url"]
    readonly_fields = [
        "etag",
        "last_modified",
        "last_fetched",
        "last_error",
        "consecutive_failures",
        "deferred_until",
        "deferred_reason",
    ]
    actions = ["refresh_now"]

    @admin.display(description="last error", ordering="last_error")
    def short_last_error(self, feed: Feed) -> str:
        return Truncator(feed.last_error).chars(120)

    # A refresh writes to the feed (its URL, validators, errors): it takes the right to change feeds.
    @admin.action(description="Refresh now", permissions=["change"])
    def refresh_now(self, request: HttpRequest, queryset: QuerySet[Feed]) -> None:
        feeds = list(queryset.only("pk", "name", "feed_url"))
        try:
            # One Redis round trip per 500 feeds. The keys make a second click a no-op while that
            # feed's refresh is still pending, so trying again after an error queues nothing twice.
            enqueue_many(
                "refresh_single_feed",
                [{"feed_url": feed.feed_url} for feed in feeds],
                keys=[f"refresh_single_feed:{feed.pk}" for feed in feeds],
            )
        except (RedisError, OSError, TimeoutError) as exc:
            logger.warning("Could not queue a refresh of %d feed(s): %s", len(feeds), exc)
            self.message_user(
                request,
                f"Could not queue the refresh: the task queue (Redis) is unreachable ({exc}). "
                "Check that Redis is running and try again.",
                messages.ERROR,
            )
            return
        self.message_user(
            request,
            f"Queued a refresh of {len(feeds)} feed(s): {', '.join(feed.name for feed in feeds)}. "
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
