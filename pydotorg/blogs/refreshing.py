"""Refreshing feeds: fetch, parse in a limited process, store; many at once, each on its own.

At most ``FEEDS_MAX_CONCURRENCY`` feeds are in progress, and at most
``FEEDS_MAX_PER_HOST`` fetches go to one host at a time. A host's turn ends when its
fetch does: parsing and storing a feed do not keep its host waiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit

import httpx
from django.utils import timezone

from . import storing
from .conf import FeedSettings, feed_settings
from .fetching import FeedGone, FetchError, RetryLater, build_client, fetch
from .models import Feed
from .parse_pool import get_pool
from .parsing import ParseError
from .store_pool import StorePool

logger = logging.getLogger(__name__)


class Outcome(StrEnum):
    STORED = "stored"  # fetched and parsed; entries created/updated as counted
    UNCHANGED = "unchanged"  # 304 Not Modified: nothing parsed
    DEFERRED = "deferred"  # the server asked us to come back later (Retry-After): not a failure
    FAILED = "failed"  # error recorded on the feed


@dataclass(frozen=True)
class Report:
    outcome: Outcome
    created: int = 0
    updated: int = 0
    error: str = ""  # FAILED: what went wrong; DEFERRED: until when, and why


@dataclass
class Totals:
    feeds_processed: int = 0  # every active feed: stored + unchanged + deferred + failed
    feeds_unchanged: int = 0
    feeds_deferred: int = 0  # skipped because of a Retry-After, given now or in an earlier run
    feeds_failed: int = 0
    entries_created: int = 0
    entries_updated: int = 0

    def add(self, report: Report) -> None:
        self.feeds_processed += 1
        self.feeds_unchanged += report.outcome is Outcome.UNCHANGED
        self.feeds_deferred += report.outcome is Outcome.DEFERRED
        self.feeds_failed += report.outcome is Outcome.FAILED
        self.entries_created += report.created
        self.entries_updated += report.updated

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def still_deferred(feed: Feed, now: datetime) -> Report | None:
    """A DEFERRED report if ``feed`` is inside the wait its server asked for, else None."""
    if feed.deferred_until is not None and feed.deferred_until > now:
        return Report(Outcome.DEFERRED, error=feed.deferred_reason)
    return None


ORM_THREAD = StorePool(1)  # sync_to_async's thread and the task's own connection


async def _refresh_feed(
    feed: Feed, client: httpx.AsyncClient, config: FeedSettings, fetched_callback: Callable[[], None], store: StorePool
) -> Report:
    """Refresh one feed (see :func:`refresh_feed_safely`); expected failures are recorded and reported."""
    try:
        try:
            fetched = await fetch(client, feed.feed_url, config, etag=feed.etag, last_modified=feed.last_modified)
        finally:
            fetched_callback()
    except FeedGone as exc:
        return await _failed(store, feed, str(exc), deactivate=True)
    except RetryLater as exc:
        logger.info("Feed %s deferred: %s", feed.pk, exc)
        await store.run(storing.record_deferral, feed.pk, exc.until, str(exc))
        return Report(Outcome.DEFERRED, error=str(exc))
    except FetchError as exc:
        return await _failed(store, feed, str(exc))
    now = timezone.now()
    if fetched.not_modified:
        saved = await store.run(storing.save_fetch, feed, fetched, None, now)
        return Report(Outcome.FAILED, error=saved.clash) if saved.clash else Report(Outcome.UNCHANGED)
    pool = get_pool(config.parse_processes, config.parse_memory_mb)
    try:
        parsed = await pool.parse(
            fetched.content,
            fetched.headers,
            fetched.url,
            storing.parse_limits(config),
            cpu_seconds=config.parse_cpu_seconds,
            wall_seconds=config.parse_timeout,
        )
    except ParseError as exc:
        return await _failed(store, feed, str(exc))
    fetched = replace(fetched, content=b"")  # the body is parsed: let it go before waiting to store
    if parsed.warning:
        logger.warning("Feed %s (%s): stored with a warning: %s", feed.pk, feed.feed_url, parsed.warning)
    saved = await store.run(storing.save_fetch, feed, fetched, parsed.entries, now)
    if saved.clash:
        return Report(Outcome.FAILED, error=saved.clash)
    return Report(Outcome.STORED, created=len(saved.created), updated=len(saved.updated))


async def _failed(store: StorePool, feed: Feed, message: str, deactivate: bool = False) -> Report:
    logger.info("Feed %s failed: %s", feed.pk, message)
    await store.run(storing.record_failure, feed.pk, message, deactivate)
    return Report(Outcome.FAILED, error=message)


class HostQueue:
    """Feeds waiting to be fetched, handed out so that no host has more than ``per_host`` fetches at once.

    ``take`` returns the first waiting feed whose host has room (the order of ``feeds``
    otherwise), waiting while every host with feeds left is busy; ``None`` when none are left.
    """

    def __init__(self, feeds: Iterable[Feed], per_host: int) -> None:
        self.per_host = per_host
        self._waiting: dict[str, deque[Feed]] = {}
        for feed in feeds:
            self._waiting.setdefault(host_of(feed.feed_url), deque()).append(feed)
        self._busy: Counter[str] = Counter()
        self._freed = asyncio.Event()

    async def take(self) -> tuple[Feed, Callable[[], None]] | None:
        """The next feed and the function that ends its host's turn (call it once the fetch is over)."""
        # No await between the scan and the take: on one event loop, nothing can slip in between.
        while self._waiting:
            # Busy hosts keep their place at the front, but there are at most
            # concurrency / per_host of them: the scan stays short.
            host = next((h for h in self._waiting if self._busy[h] < self.per_host), None)
            if host is None:
                self._freed.clear()
                await self._freed.wait()
                continue
            queue = self._waiting[host]
            feed = queue.popleft()
            if not queue:
                del self._waiting[host]
            self._busy[host] += 1
            return feed, self._releaser(host)
        return None

    def _releaser(self, host: str) -> Callable[[], None]:
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._busy[host] -= 1
                self._freed.set()

        return release


def host_of(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


async def refresh_feeds(feeds: Iterable[Feed], config: FeedSettings | None = None) -> Totals:
    """Refresh ``feeds`` concurrently within the concurrency limits; one failure stops none.

    Feeds still inside a Retry-After wait are counted as deferred and not fetched.
    """
    config = config or feed_settings()
    totals = Totals()
    now = timezone.now()
    due = []
    for feed in feeds:
        deferred = still_deferred(feed, now)
        if deferred:
            totals.add(deferred)
        else:
            due.append(feed)
    queue = HostQueue(due, config.max_per_host)
    ssl_context = httpx.create_ssl_context()
    store = StorePool(config.store_connections)

    async def worker() -> None:
        # Each worker fetches one feed at a time over its own connection.
        async with build_client(config, ssl_context) as client:
            while (taken := await queue.take()) is not None:
                feed, release = taken
                try:
                    totals.add(await refresh_feed_safely(feed, client, config, release, store))
                finally:
                    release()

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(config.max_concurrency, len(due))):
                group.create_task(worker())
    finally:
        await store.close()
    return totals


async def refresh_feed_safely(
    feed: Feed,
    client: httpx.AsyncClient,
    config: FeedSettings,
    fetched_callback: Callable[[], None] = lambda: None,
    store: StorePool = ORM_THREAD,
) -> Report:
    """Refresh one feed. Failures are recorded on the feed and reported, never raised: expected ones
    (a fetch or parse error, a deferral) as such, and a bug logged with its traceback.

    ``fetched_callback`` is called once the fetch is over, whatever its outcome; the
    database work runs on ``store``.
    """
    try:
        return await _refresh_feed(feed, client, config, fetched_callback, store)
    except Exception as exc:
        logger.exception("Unexpected error refreshing feed %s (%s)", feed.pk, feed.feed_url)
        message = f"Unexpected error (a bug; see the worker log): {type(exc).__name__}: {exc}"
        try:
            await store.run(storing.record_failure, feed.pk, message)
        except Exception:
            logger.exception("Could not record the error on feed %s", feed.pk)
        return Report(Outcome.FAILED, error=message)


async def active_feeds() -> list[Feed]:
    return [feed async for feed in Feed.objects.filter(is_active=True).order_by("pk")]
