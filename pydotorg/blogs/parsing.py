"""Turning fetched bytes into clean, bounded entries: feedparser, then the site's allow-list.

Pure CPU work with no Django or I/O. It runs in the parse processes (``parse_pool``),
whose CPU, memory and time limits contain whatever a hostile document makes
feedparser do, and what it returns is small: at most ``max_entries`` entries, each
HTML field sanitised by ``pydotorg.safehtml`` and cut to ``content_chars``, and
all of it within ``total_bytes`` of memory.

feedparser's own sanitizer and relative-URI resolver are switched off: they are
slow regular-expression code that a crafted document can keep busy for minutes,
and their scheme check looks only at ``href``. nh3 does both jobs instead.
"""

from __future__ import annotations

import hashlib
import html
import io
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin

import feedparser
from feedparser.mixin import _FeedParserMixin

from pydotorg.safehtml import is_web_url, sanitize, to_text

HTML_TYPES = ("text/html", "application/xhtml+xml")
# Only these response headers mean anything to feedparser once httpx has decoded the body
# (passing Content-Encoding on would make it try to gunzip the bytes a second time). Not
# Content-Location either: feedparser resolves links against it, so a guid-less entry's
# identity (its link) would change whenever the feed moves. Links are resolved here instead.
PASSED_HEADERS = ("content-type", "content-language")
# Markup sanitised at most this many times the kept length: nh3's work stays bounded
# however long a field is, and a field this much longer than its cap is cut anyway.
SANITIZE_INPUT_FACTOR = 4
# The span of entry dates used (``_date``); outside it an entry is stamped with its fetch time.
EARLIEST_DATE = datetime(1970, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)  # clocks and time zones that feeds get wrong
# A numeric character reference: feedparser's loose parser raises on one that is no character
# (a surrogate, or past U+10FFFF), which would lose every entry of the document.
CHARREF = re.compile(rb"&#([xX][0-9a-fA-F]+|[0-9]+);")

# An entry's id is a name, not a link, but feedparser resolves it against the address
# the document was fetched from, so the same entry gets a new id when the feed moves
# (a 301, an edit from http to https) and is stored twice. Every process that parses
# imports this module, so ids are kept exactly as the document gives them everywhere.
if "id" not in _FeedParserMixin.can_be_relative_uri:
    raise ImportError("feedparser no longer resolves entry ids; remove the override in pydotorg/blogs/parsing.py")
_FeedParserMixin.can_be_relative_uri = _FeedParserMixin.can_be_relative_uri - {"id"}


class ParseError(Exception):
    """The document yields no entries and is not a valid feed; the message is recorded on the feed."""


@dataclass(frozen=True)
class ParseLimits:
    """What one document may add: field sizes (the model's), entries, characters."""

    guid: int = 1000
    title: int = 500
    url: int = 2000
    entries: int = 100  # the newest ones are kept
    content_chars: int = 65536  # each of summary and content, after sanitising
    total_bytes: int = 10 * 1024 * 1024  # the memory of all text of all kept entries together


@dataclass(frozen=True)
class ParsedEntry:
    guid: str  # the id exactly as the document gives it, else the link, else a hash
    title: str  # plain text
    summary: str  # sanitised HTML, or "" when the document gives no summary of its own
    content: str  # sanitised HTML
    url: str  # absolute http(s), or ""
    pub_date: datetime | None  # None when the feed gives no usable date; the store uses the fetch time
    # The guid earlier versions stored: the id resolved against the fetch address ("" if the same).
    legacy_guid: str = ""

    def size(self) -> int:
        """Bytes of memory its text takes (a str of astral characters takes four bytes a character)."""
        return sum(map(sys.getsizeof, (self.guid, self.title, self.summary, self.content, self.url)))


@dataclass(frozen=True)
class ParsedFeed:
    entries: list[ParsedEntry]
    warning: str = ""  # set when the document was malformed or cut but still yielded entries


def parse_feed(
    content: bytes | bytearray, headers: Mapping[str, str], url: str, limits: ParseLimits = ParseLimits()
) -> ParsedFeed:
    """Parse a fetched document (``headers``: the response's, lower-case) fetched from ``url``.

    Raises ParseError when the document is not a feed, or is broken and has no entries.
    """
    passed = {name: headers[name] for name in PASSED_HEADERS if name in headers}
    # Relative links and markup resolve against it. feedparser gets no base, so the links it
    # gives are as written, or resolved against the document's own xml:base.
    base = _link(headers.get("content-location"), url, None) or url
    # A file object, never bytes: given bytes, feedparser first tries them as a local file name.
    try:
        result = feedparser.parse(
            io.BytesIO(_mend_charrefs(content)), response_headers=passed, sanitize_html=False,
            resolve_relative_uris=False,
        )  # fmt: skip
    except ValueError as exc:  # feedparser's own failure on hostile bytes (UnicodeError is a ValueError)
        raise ParseError(f"{url} is not a parseable feed: {_describe(exc)}.") from None
    if not result.entries:
        if result.bozo:
            raise ParseError(f"{url} is not a parseable feed: {_describe(result.get('bozo_exception'))}.")
        if not result.get("version"):
            raise ParseError(f"{url} is not an RSS or Atom feed (no entries and no recognised feed format).")
        return ParsedFeed(entries=[])
    notes = [_describe(result.get("bozo_exception"))] if result.bozo else []

    # Identity and date first (cheap), so only the entries that are kept get sanitised.
    candidates: dict[str, tuple[Mapping[str, Any], datetime | None]] = {}
    for raw in result.entries:
        candidates.setdefault(_guid(raw, base, limits.guid), (raw, _date(raw)))  # a repeated guid: first wins
    newest = sorted(candidates.items(), key=lambda item: _newest_first(item[1][1]))
    if len(newest) > limits.entries:
        notes.append(f"kept the newest {limits.entries} of {len(newest)} entries (FEEDS_MAX_ENTRIES)")
        newest = newest[: limits.entries]

    entries: list[ParsedEntry] = []
    budget = limits.total_bytes
    for guid, (raw, pub_date) in newest:
        entry = _entry(raw, guid, pub_date, base, limits)
        budget -= entry.size()
        if budget < 0:
            notes.append(f"kept the newest {len(entries)} entries: more would pass {limits.total_bytes} bytes")
            break
        entries.append(entry)
    return ParsedFeed(entries=entries, warning="; ".join(notes))


def _mend_charrefs(content: bytes | bytearray) -> bytes | bytearray:
    """``content`` with each numeric character reference that is no character replaced by U+FFFD's. In
    encodings that are not ASCII-compatible (UTF-16) none is found: such a document's failure is a ParseError."""
    if b"&#" not in content:
        return content

    def mend(match: re.Match[bytes]) -> bytes:
        hexadecimal = match[1][:1] in b"xX"
        digits = (match[1][1:] if hexadecimal else match[1]).lstrip(b"0") or b"0"
        code = int(digits, 16 if hexadecimal else 10) if len(digits) <= 8 else sys.maxunicode + 1
        return b"&#xFFFD;" if code > sys.maxunicode or 0xD800 <= code <= 0xDFFF else match[0]

    return CHARREF.sub(mend, content)


def _describe(exc: Any) -> str:
    return f"{type(exc).__name__}: {exc}" if exc is not None else "unknown problem"


def _newest_first(pub_date: datetime | None) -> float:
    # Undated entries will be stamped with the fetch time, so they count as the newest.
    return -pub_date.timestamp() if pub_date else float("-inf")


def _entry(raw: Mapping[str, Any], guid: str, pub_date: datetime | None, base: str, limits: ParseLimits):
    content = _html(_pick_content(raw.get("content")), base, limits.content_chars)
    # Without summary_detail, feedparser's "summary" is its copy of the content, not a summary.
    summary = _html(raw.get("summary_detail"), base, limits.content_chars)
    title = _title(raw)
    if not title:
        title = _truncate(to_text(summary or content), 80) or "(untitled)"
    return ParsedEntry(
        guid=guid,
        title=_truncate(title, limits.title),
        summary=summary,
        content=content,
        url=_link(raw.get("link"), base, limits.url),
        pub_date=pub_date,
        legacy_guid=_legacy_guid(raw, guid, base, limits.guid),
    )


def _nul_free(value: str) -> str:
    # The loose parser can pass NUL characters through; PostgreSQL text cannot hold them.
    return value.replace("\x00", "")


def _guid(raw: Mapping[str, Any], base: str, limit: int) -> str:
    """Entry id as written, else link, else a hash of what the entry says (never the fetch time: it must be stable).

    The link as written, or resolved against the document's own xml:base: never against the
    address it was fetched from, which a move (a 301, a 302, http to https) changes.
    """
    link = raw.get("link")
    for candidate in (raw.get("id"), link if _link(link, base, None) else None):
        if isinstance(candidate, str) and candidate.strip():
            return fit_guid(_nul_free(candidate.strip()), limit)
    content = _pick_content(raw.get("content"))
    parts = [
        raw.get("title"),
        raw.get("published") or raw.get("updated"),
        content.get("value") if content else None,
        raw.get("summary"),
    ]
    return _digest("\x1f".join(part if isinstance(part, str) else "" for part in parts))


def _legacy_guid(raw: Mapping[str, Any], guid: str, base: str, limit: int) -> str:
    """What versions before the fix stored for a relative id or link: it resolved against the document's base.

    (storing.py also tries the feed's address before this fetch, for rows stored before a move.)
    """
    raw_id = raw.get("id")
    if not isinstance(raw_id, str) or not raw_id.strip():
        raw_id = raw.get("link")
        if not isinstance(raw_id, str) or not raw_id.strip() or raw_id.strip() != guid:
            return ""
    try:
        entry_base = urljoin(base, (raw.get("title_detail") or {}).get("base") or "")
        resolved = urljoin(entry_base, _nul_free(raw_id.strip()))
    except ValueError:
        return ""
    legacy = fit_guid(resolved, limit)
    return legacy if legacy != guid else ""


def fit_guid(value: str, limit: int) -> str:
    """``value``, or its digest when it is longer than ``limit`` (the guid column's length)."""
    return value if len(value) <= limit else _digest(value)


def _digest(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def _pick_content(items: Any) -> Mapping[str, Any] | None:
    """The HTML version of the content if there is one, else the first."""
    if not isinstance(items, list) or not items:
        return None
    for item in items:
        if isinstance(item, Mapping) and item.get("type") in HTML_TYPES:
            return item
    return items[0] if isinstance(items[0], Mapping) else None


def _html(detail: Any, base: str, cap: int) -> str:
    """Sanitised HTML of at most ``cap`` characters: HTML types are cleaned, anything else is text and escaped."""
    if not isinstance(detail, Mapping) or not isinstance(detail.get("value"), str):
        return ""
    value = _nul_free(detail["value"][: cap * SANITIZE_INPUT_FACTOR])
    markup = value if detail.get("type") in HTML_TYPES else html.escape(value)
    element_base = urljoin(base, detail.get("base") or "")  # xml:base, which may itself be relative
    return _fit(markup, element_base if is_web_url(element_base) else base, cap)


def _fit(markup: str, base: str, cap: int) -> str:
    clean = sanitize(markup, base_url=base)
    if len(clean) <= cap:
        return clean
    # Cut the clean HTML and let the sanitizer mend what the cut broke (an open tag, half an
    # entity); mending closes open elements, so it may need a few tries to fit.
    cut = cap
    for _ in range(5):
        mended = sanitize(clean[:cut], base_url=base)
        if len(mended) <= cap:
            return mended
        cut -= len(mended) - cap + 64
        if cut <= 0:
            break
    # Nesting so deep that its closing tags alone pass the cap: keep the words.
    return html.escape(to_text(clean)[: cap // 6])


def _title(raw: Mapping[str, Any]) -> str:
    title = raw.get("title")
    if not isinstance(title, str):
        return ""
    detail = raw.get("title_detail") or {}
    if detail.get("type") in HTML_TYPES:
        title = to_text(title)
    return " ".join(_nul_free(title).split())


def _truncate(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


def _link(value: Any, base: str, limit: int | None) -> str:
    """An absolute http(s) link that fits the field; a cut URL would be a broken link, so it is dropped instead."""
    if not isinstance(value, str) or "\x00" in value:
        return ""
    try:
        link = urljoin(base, value.strip())
    except ValueError:
        return ""
    return link if is_web_url(link) and (limit is None or len(link) <= limit) else ""


def _date(raw: Mapping[str, Any]) -> datetime | None:
    """Published, else updated; feedparser gives UTC struct_times. A date before ``EARLIEST_DATE`` or more
    than ``FUTURE_SLACK`` ahead is not used: one far ahead would pin its entry above every other for good,
    and years near 1 or 9999 overflow when a page shows them in a time zone other than UTC."""
    latest = datetime.now(UTC) + FUTURE_SLACK
    for key in ("published_parsed", "updated_parsed"):
        parsed = raw.get(key)
        if parsed:
            try:
                value = datetime(*parsed[:6], tzinfo=UTC)
            except (TypeError, ValueError, OverflowError):
                continue
            if EARLIEST_DATE <= value <= latest:
                return value
    return None
