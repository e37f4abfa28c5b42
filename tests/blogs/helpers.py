"""Helpers for the feed tests: make a feed, run the tasks from sync test code."""

from typing import Any

from asgiref.sync import async_to_sync

from pydotorg.blogs.models import Feed
from pydotorg.blogs.tasks import refresh_all_feeds, refresh_single_feed


def make_feed(url: str, name: str = "Feed", **fields: Any) -> Feed:
    return Feed.objects.create(name=name, feed_url=url, **fields)


# async_to_sync keeps the ORM on this thread, inside the test's transaction.
def refresh_all() -> dict[str, int]:
    return async_to_sync(refresh_all_feeds)({})


def refresh_one(url: str) -> dict[str, Any]:
    return async_to_sync(refresh_single_feed)({}, feed_url=url)
