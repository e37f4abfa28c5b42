"""Recording a refresh in the database: entries upserted, the feed's state updated.

A successful fetch is saved in one transaction: the entries, the validators
(ETag, Last-Modified) and a moved URL commit together, so a crash can never
leave a stored ETag whose entries were not saved (the next fetch would get a
304 and the entries would be lost).

These functions are sync because transactions and on_commit are; async code
calls them through ``sync_to_async``.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urljoin, urlsplit

from django.db import IntegrityError, router, transaction
from django.db.models import F

from pydotorg.validators import displayable

from .conf import FeedSettings
from .fetching import FetchResult, sendable
from .models import BlogEntry, Feed
from .parsing import ParsedEntry, ParseLimits, fit_guid
from .signals import entries_changed

logger = logging.getLogger(__name__)

ENTRY_FIELDS = ("title", "summary", "content", "url", "pub_date")
SELECT_CHUNK = 1000  # guids per lookup query
WRITE_BATCH = 500  # rows per INSERT ... ON CONFLICT statement


@dataclass
class Saved:
    created: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    clash: str = ""  # set when the feed moved to a URL another feed already has


def parse_limits(config: FeedSettings) -> ParseLimits:
    """What one document may add: the model's field sizes and the settings' caps."""
    meta = BlogEntry._meta
    return ParseLimits(
        guid=meta.get_field("guid").max_length,
        title=meta.get_field("title").max_length,
        url=meta.get_field("url").max_length,
        entries=config.max_entries,
        content_chars=config.max_content_chars,
        # What the parse process hands back is no bigger than the body it was given.
        total_bytes=config.max_bytes,
    )


def _validator(value: str, name: str) -> str:
    """Stored exactly as received, or not at all: a cut ETag would never match again, and one that cannot
    be sent back (``fetching.sendable``) would make every later fetch fail."""
    limit = Feed._meta.get_field(name).max_length
    return value if len(value) <= limit and sendable(value) else ""


def save_fetch(feed: Feed, fetched: FetchResult, entries: list[ParsedEntry] | None, now: datetime) -> Saved:
    """Record a 200 (with ``entries``) or a 304 (``entries`` is None) for ``feed``."""
    changes = _feed_changes(fetched, entries, now)
    earlier_url = feed.feed_url  # before a permanent move is recorded: rows stored before it resolved against it
    moved = fetched.moved_to if fetched.moved_to and fetched.moved_to != feed.feed_url else None
    if moved and len(moved) > Feed._meta.get_field("feed_url").max_length:
        # A cut URL would fetch something else: the feed stays where it is, its entries are stored.
        logger.warning("Feed %s moved permanently to a URL of %d characters, longer than a feed URL may be; "
                       "it keeps its URL %s.", feed.pk, len(moved), feed.feed_url)  # fmt: skip
        moved = None
    # A 304 (or an empty feed) is one UPDATE and needs no transaction; entries or a move do.
    with transaction.atomic() if moved or entries else nullcontext():
        if moved:
            clash = _clash(feed, moved)
            if clash:
                return Saved(clash=clash)
            changes["feed_url"] = moved
            try:
                with transaction.atomic():  # a savepoint, so a lost race leaves the transaction usable
                    found = Feed.objects.filter(pk=feed.pk).update(**changes)
            except IntegrityError:  # another feed took the new URL since the check above
                return Saved(clash=_clash(feed, moved, raced=True))
            if found:
                logger.info("Feed %s moved permanently from %s to %s", feed.pk, feed.feed_url, moved)
                feed.feed_url = moved
        else:
            # Updating the row first also locks it: two refreshes of one feed store one after the other.
            found = Feed.objects.filter(pk=feed.pk).update(**changes)
        if not found:
            logger.info("Feed %s was deleted during its refresh; nothing stored.", feed.pk)
            return Saved()
        saved = _upsert(feed.pk, entries, now, (earlier_url, fetched.url)) if entries else Saved()
        if saved.created or saved.updated:
            # bulk_create sends no post_save: tell whoever follows entries (search), in this transaction.
            entries_changed.send(
                sender=BlogEntry, ids=saved.created + saved.updated, using=router.db_for_write(BlogEntry)
            )
        return saved


def _feed_changes(fetched: FetchResult, entries: list[ParsedEntry] | None, now: datetime) -> dict[str, object]:
    changes: dict[str, object] = {
        "last_fetched": now,
        "last_error": "",
        "consecutive_failures": 0,
        "deferred_until": None,
        "deferred_reason": "",
    }
    if entries is not None:
        # A 200 replaces both validators; an absent one must not be sent next time.
        changes["etag"] = _validator(fetched.etag, "etag")
        changes["last_modified"] = _validator(fetched.last_modified, "last_modified")
    else:
        # A 304 may refresh them; when it omits them the stored ones still hold.
        if fetched.etag:
            changes["etag"] = _validator(fetched.etag, "etag")
        if fetched.last_modified:
            changes["last_modified"] = _validator(fetched.last_modified, "last_modified")
    return changes


def _clash(feed: Feed, moved: str, raced: bool = False) -> str:
    """Deactivate ``feed``: it moved to a URL another feed already fetches, which would duplicate entries."""
    other = Feed.objects.filter(feed_url=moved).exclude(pk=feed.pk).first()
    if other is None and not raced:
        return ""
    owner = f"feed {other.pk} ({other.name!r})" if other else "another feed"
    message = (
        f"{feed.feed_url} moved permanently to {moved}, which {owner} already fetches. "
        "This feed was deactivated to avoid duplicate entries; delete it or merge the two in the admin."
    )
    Feed.objects.filter(pk=feed.pk).update(
        is_active=False, last_error=message, consecutive_failures=F("consecutive_failures") + 1
    )
    return message


def _upsert(feed_id: int, entries: list[ParsedEntry], now: datetime, addresses: tuple[str, ...] = ()) -> Saved:
    """Insert or update ``entries``; ``addresses``: the feed's URL before this fetch and the one that answered."""
    guids = [entry.guid for entry in entries]
    # Rows stored before ids (and the links of entries without one) were kept as written carry
    # them resolved against a fetch address, this one's or, if the feed has moved since, the
    # feed's address before: they are found by that form and take the document's form, once.
    limit = BlogEntry._meta.get_field("guid").max_length
    legacy: dict[str, str] = {}
    for entry in entries:
        forms = [entry.legacy_guid] if entry.legacy_guid else []
        for form in forms + _resolved(entry.guid, addresses, limit):
            if form != entry.guid:
                legacy.setdefault(form, entry.guid)
    for guid in guids:
        legacy.pop(guid, None)  # a legacy form that is another entry's own id belongs to that entry
    lookup = guids + list(legacy)
    existing: dict[str, tuple] = {}
    for start in range(0, len(lookup), SELECT_CHUNK):
        rows = BlogEntry.objects.filter(feed_id=feed_id, guid__in=lookup[start : start + SELECT_CHUNK])
        for row in rows.values_list("guid", "id", *ENTRY_FIELDS):
            existing[row[0]] = row[1:]
    renamed = 0
    for old_guid, guid in legacy.items():
        if old_guid in existing and guid not in existing:
            existing[guid] = existing.pop(old_guid)
            BlogEntry.objects.filter(pk=existing[guid][0]).update(guid=guid)
            renamed += 1
    if renamed:
        logger.info("Feed %s: %s entries now carry the id their document gives, not a resolved one", feed_id, renamed)
    new, changed = [], []
    for entry in entries:
        old = existing.get(entry.guid)
        if old is None:
            new.append(_row(feed_id, entry, entry.pub_date or now))
            continue
        _, *old_values = old
        # No date in the feed: keep the one given on first sight rather than a new fetch time each run (unless
        # no page could show it: stored before dates were checked, ``displayable_datetime``).
        kept = old_values[-1]
        pub_date = entry.pub_date or (kept if displayable(kept) else now)
        if [entry.title, entry.summary, entry.content, entry.url, pub_date] != old_values:
            changed.append(_row(feed_id, entry, pub_date))
    rows = new + changed
    if rows:
        BlogEntry.objects.bulk_create(
            rows,
            batch_size=WRITE_BATCH,
            update_conflicts=True,
            unique_fields=["feed", "guid"],
            update_fields=[*ENTRY_FIELDS, "updated"],
        )
    return Saved(created=[row.pk for row in new], updated=[row.pk for row in changed])


def _resolved(guid: str, addresses: tuple[str, ...], limit: int) -> list[str]:
    """``guid`` resolved against each address when it is relative (as earlier versions stored it); else []."""
    try:
        if urlsplit(guid).scheme:  # absolute, or a digest ("sha256:..."): the same wherever the feed is
            return []
        return [fit_guid(urljoin(address, guid), limit) for address in addresses]
    except ValueError:  # not a URL after all: nothing was stored resolved
        return []


def _row(feed_id: int, entry: ParsedEntry, pub_date: datetime) -> BlogEntry:
    return BlogEntry(
        feed_id=feed_id,
        guid=entry.guid,
        title=entry.title,
        summary=entry.summary,
        content=entry.content,
        url=entry.url,
        pub_date=pub_date,
    )


def record_deferral(feed_id: int, until: datetime, message: str) -> None:
    """The server asked us to wait (429/503 with Retry-After): not a failure, so the failure count stays."""
    Feed.objects.filter(pk=feed_id).update(deferred_until=until, deferred_reason=message[:2000])


def record_failure(feed_id: int, message: str, deactivate: bool = False) -> None:
    changes: dict[str, object] = {"last_error": message[:2000], "consecutive_failures": F("consecutive_failures") + 1}
    if deactivate:
        changes["is_active"] = False
    Feed.objects.filter(pk=feed_id).update(**changes)
