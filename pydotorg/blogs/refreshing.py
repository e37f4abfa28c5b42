"""Refreshing feeds: fetch, then parse off the event loop, then store; many at once, each on its own."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum

import httpx
from asgiref.sync import sync_to_async
from django.utils import timezone

from . import storing
from .conf import FeedSettings, feed_settings
from .fetching import FeedGone, FetchError, build_client, fetch
from .models import Feed
from .parsing import ParseError, parse_feed

logger = logging.getLogger(__name__)


class Outcome(StrEnum):
    STORED = "stored"  # fetched and parsed; entries created/updated as counted
    UNCHANGED = "unchanged"  # 304 Not Modified: nothing parsed
    FAILED = "failed"  # error recorded on the feed


@dataclass(frozen=True)
class Report:
    outcome: Outcome
    created: int = 0
    updated: int = 0
    error: str = ""


@dataclass
class Totals:
    feeds_processed: int = 0  # every feed attempted: stored + unchanged + failed
    feeds_unchanged: int = 0
    feeds_failed: int = 0
    entries_created: int = 0
    entries_updated: int = 0

    def add(self, report: Report) -> None:
        self.feeds_processed += 1
        self.feeds_unchanged += report.outcome is Outcome.UNCHANGED
        self.feeds_failed += report.outcome is Outcome.FAILED
        self.entries_created += report.created
        self.entries_updated += report.updated

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


async def refresh_feed(feed: Feed, client: httpx.AsyncClient, config: FeedSettings) -> Report:
    """Refresh one feed. Expected failures are recorded on the feed and reported, not raised."""
    try:
        fetched = await fetch(client, feed.feed_url, config, etag=feed.etag, last_modified=feed.last_modified)
    except FeedGone as exc:
        return await _failed(feed, str(exc), deactivate=True)
    except FetchError as exc:
        return await _failed(feed, str(exc))
    now = timezone.now()
    if fetched.not_modified:
        saved = await sync_to_async(storing.save_fetch)(feed, fetched, None, now)
        return Report(Outcome.FAILED, error=saved.clash) if saved.clash else Report(Outcome.UNCHANGED)
    try:
        # Parsing is CPU work: a thread keeps the event loop free for the other fetches.
        parsed = await asyncio.to_thread(
            parse_feed, fetched.content, fetched.headers, fetched.url, storing.entry_limits()
        )
    except ParseError as exc:
        return await _failed(feed, str(exc))
    if parsed.warning:
        logger.warning("Feed %s (%s) is malformed but has entries: %s", feed.pk, feed.feed_url, parsed.warning)
    saved = await sync_to_async(storing.save_fetch)(feed, fetched, parsed.entries, now)
    if saved.clash:
        return Report(Outcome.FAILED, error=saved.clash)
    return Report(Outcome.STORED, created=len(saved.created), updated=len(saved.updated))


async def _failed(feed: Feed, message: str, deactivate: bool = False) -> Report:
    logger.info("Feed %s failed: %s", feed.pk, message)
    await sync_to_async(storing.record_failure)(feed.pk, message, deactivate)
    return Report(Outcome.FAILED, error=message)


async def refresh_feeds(feeds: Iterable[Feed], config: FeedSettings | None = None) -> Totals:
    """Refresh ``feeds`` concurrently, at most ``FEEDS_MAX_CONCURRENCY`` at a time; one failure stops none."""
    config = config or feed_settings()
    pending = deque(feeds)
    totals = Totals()
    ssl_context = httpx.create_ssl_context()

    async def worker() -> None:
        # Each worker fetches one feed at a time over its own connection.
        async with build_client(config, ssl_context) as client:
            while pending:
                totals.add(await refresh_feed_safely(pending.popleft(), client, config))

    async with asyncio.TaskGroup() as group:
        for _ in range(min(config.max_concurrency, len(pending))):
            group.create_task(worker())
    return totals


async def refresh_feed_safely(feed: Feed, client: httpx.AsyncClient, config: FeedSettings) -> Report:
    """``refresh_feed``, with a bug logged (with its traceback) and recorded on the feed instead of raised."""
    try:
        return await refresh_feed(feed, client, config)
    except Exception as exc:
        logger.exception("Unexpected error refreshing feed %s (%s)", feed.pk, feed.feed_url)
        message = f"Unexpected error (a bug; see the worker log): {type(exc).__name__}: {exc}"
        try:
            await sync_to_async(storing.record_failure)(feed.pk, message)
        except Exception:
            logger.exception("Could not record the error on feed %s", feed.pk)
        return Report(Outcome.FAILED, error=message)


async def active_feeds() -> list[Feed]:
    return [feed async for feed in Feed.objects.filter(is_active=True).order_by("pk")]
