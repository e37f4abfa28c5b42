"""Turning fetched bytes into clean entries with feedparser.

Pure CPU work with no Django or I/O, so it can run in a worker thread.
"""

from __future__ import annotations

import hashlib
import html
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import feedparser

HTML_TYPES = ("text/html", "application/xhtml+xml")  # the types feedparser sanitises
# Only these response headers mean anything to feedparser once httpx has decoded the body
# (passing Content-Encoding on would make it try to gunzip the bytes a second time).
PASSED_HEADERS = ("content-type", "content-location", "content-language")


class ParseError(Exception):
    """The document yields no entries and is not a valid feed; the message is recorded on the feed."""


@dataclass(frozen=True)
class FieldLimits:
    guid: int = 1000
    title: int = 500
    url: int = 2000


@dataclass(frozen=True)
class ParsedEntry:
    guid: str
    title: str
    summary: str  # safe HTML
    content: str  # safe HTML
    url: str  # http(s) or ""
    pub_date: datetime | None  # None when the feed gives no usable date; the store uses the fetch time


@dataclass(frozen=True)
class ParsedFeed:
    entries: list[ParsedEntry]
    warning: str = ""  # set when the document was malformed but still yielded entries


def parse_feed(content: bytes, headers: Mapping[str, str], url: str, limits: FieldLimits = FieldLimits()) -> ParsedFeed:
    passed = {name: headers[name] for name in PASSED_HEADERS if name in headers}
    passed.setdefault("content-location", url)  # the base for relative links
    # A file object, never bytes: given bytes, feedparser first tries them as a local file name.
    result = feedparser.parse(io.BytesIO(content), response_headers=passed)
    if not result.entries:
        if result.bozo:
            raise ParseError(f"{url} is not a parseable feed: {_describe(result.get('bozo_exception'))}.")
        if not result.get("version"):
            raise ParseError(f"{url} is not an RSS or Atom feed (no entries and no recognised feed format).")
        return ParsedFeed(entries=[])
    entries: dict[str, ParsedEntry] = {}
    for raw in result.entries:
        entry = _entry(raw, limits)
        entries.setdefault(entry.guid, entry)  # a guid repeated in one document: the first one wins
    warning = _describe(result.get("bozo_exception")) if result.bozo else ""
    return ParsedFeed(entries=list(entries.values()), warning=warning)


def _describe(exc: Any) -> str:
    return f"{type(exc).__name__}: {exc}" if exc is not None else "unknown problem"


def _entry(raw: Mapping[str, Any], limits: FieldLimits) -> ParsedEntry:
    content = _html(_pick_content(raw.get("content")))
    summary = _html(raw.get("summary_detail"), raw.get("summary"))
    title = _title(raw)
    if not title:
        title = _truncate(_text(summary or content), 80) or "(untitled)"
    return ParsedEntry(
        guid=_nul_free(_guid(raw, limits.guid)),
        title=_nul_free(_truncate(title, limits.title)),
        summary=_nul_free(summary),
        content=_nul_free(content),
        url=_safe_url(raw.get("link"), limits.url),
        pub_date=_date(raw),
    )


def _nul_free(value: str) -> str:
    # The loose parser can pass NUL characters through; PostgreSQL text cannot hold them.
    return value.replace("\x00", "")


def _guid(raw: Mapping[str, Any], limit: int) -> str:
    """Entry id, else link, else a hash of what the entry says (never the fetch time: it must be stable)."""
    for candidate in (raw.get("id"), raw.get("link")):
        if isinstance(candidate, str) and candidate.strip():
            value = candidate.strip()
            return value if len(value) <= limit else _digest(value)
    content = _pick_content(raw.get("content"))
    parts = [
        raw.get("title"),
        raw.get("published") or raw.get("updated"),
        content.get("value") if content else None,
        raw.get("summary"),
    ]
    return _digest("\x1f".join(part if isinstance(part, str) else "" for part in parts))


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


def _html(detail: Mapping[str, Any] | None, value: Any = None) -> str:
    """Safe HTML: feedparser already sanitised HTML types; anything else is text and is escaped."""
    if detail is None:
        return html.escape(value) if isinstance(value, str) else ""
    text = detail.get("value")
    if not isinstance(text, str):
        return ""
    return text if detail.get("type") in HTML_TYPES else html.escape(text)


def _title(raw: Mapping[str, Any]) -> str:
    title = raw.get("title")
    if not isinstance(title, str):
        return ""
    detail = raw.get("title_detail") or {}
    if detail.get("type") in HTML_TYPES:
        title = _text(title)
    return " ".join(title.split())


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _text(markup: str) -> str:
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    return " ".join("".join(extractor.parts).split())


def _truncate(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


def _safe_url(value: Any, limit: int) -> str:
    """Only http(s) links that fit the field; a cut URL would be a broken link, so it is dropped instead."""
    if not isinstance(value, str):
        return ""
    value = value.strip()
    if "\x00" in value:
        return ""
    try:
        scheme = urlsplit(value).scheme.lower()
    except ValueError:
        return ""
    return value if scheme in ("http", "https") and len(value) <= limit else ""


def _date(raw: Mapping[str, Any]) -> datetime | None:
    """Published, else updated; feedparser gives UTC struct_times."""
    for key in ("published_parsed", "updated_parsed"):
        parsed = raw.get(key)
        if parsed:
            try:
                return datetime(*parsed[:6], tzinfo=UTC)
            except (TypeError, ValueError, OverflowError):
                continue
    return None
