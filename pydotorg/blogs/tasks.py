"""Feed refresh tasks: every active feed on a cron, or one feed on demand."""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone

from tasks_app import task

from .conf import feed_settings
from .models import Feed

# fetching and refreshing (httpx, the parse and store pools) are imported by the tasks that use them,
# not here: every worker imports this module to register the tasks, and starts its first job sooner so.

logger = logging.getLogger(__name__)


class FeedRefreshError(Exception):
    """refresh_single_feed could not refresh the feed; the job fails with this message."""


# Each fetch has its own deadline (FEEDS_DEADLINE) and each parse its own (FEEDS_PARSE_TIMEOUT),
# so a run takes at most about ceil(feeds / FEEDS_MAX_CONCURRENCY) of both. No retries: failures
# are recorded per feed, and the next cron run (or "Refresh now") is the retry.
@task(timeout=3600, retries=0)
async def refresh_all_feeds(ctx: dict[str, Any]) -> dict[str, int]:
    """Refresh every active feed; returns feeds_processed/unchanged/deferred/failed and entries_created/updated."""
    from .refreshing import active_feeds, refresh_feeds

    totals = await refresh_feeds(await active_feeds())
    logger.info("Refreshed feeds: %s", totals.as_dict(), extra=totals.as_dict())
    return totals.as_dict()


@task(timeout=300, retries=0)
async def refresh_single_feed(ctx: dict[str, Any], feed_url: str) -> dict[str, Any]:
    """Refresh the feed whose URL is ``feed_url`` (active or not: it was asked for by name).

    Returns ``outcome`` (stored, unchanged or deferred: its server asked us to wait, and
    ``deferred`` says until when), ``entries_created`` and ``entries_updated``. Raises
    FeedRefreshError when no feed has that URL or the refresh failed (the error is also
    recorded on the feed), so the job shows as failed rather than done.
    """
    from .fetching import build_client
    from .refreshing import Outcome, refresh_feed_safely, still_deferred

    feed = await Feed.objects.filter(feed_url=feed_url).afirst()
    if feed is None:
        raise FeedRefreshError(f"No feed has the URL {feed_url!r}; add it in the admin or check the spelling.")
    report = still_deferred(feed, timezone.now())
    if report is None:
        config = feed_settings()
        async with build_client(config) as client:
            report = await refresh_feed_safely(feed, client, config)
    if report.outcome is Outcome.FAILED:
        raise FeedRefreshError(report.error)
    result = {"outcome": report.outcome.value, "entries_created": report.created, "entries_updated": report.updated}
    if report.outcome is Outcome.DEFERRED:
        result["deferred"] = report.error
    return result
