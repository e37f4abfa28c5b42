"""Every document of feedparser's own test corpus, served over HTTP and refreshed, hundreds at a time.

Each document must end in exactly one of three states: entries stored, an error
recorded on the feed, or a well-formed feed that really has no entries (checked
independently with feedparser). Nothing may raise, and nothing may be logged as
an unexpected error.
"""

import io
import logging
import re
from pathlib import Path

import feedparser
import pytest
from django.db.models import Count

from pydotorg.blogs.models import BlogEntry, Feed

from .helpers import refresh_all

pytestmark = pytest.mark.django_db

REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS = REPO_ROOT.parent / "shared" / "corpus" / "feedparser"
# Documents declare the HTTP headers they expect to be served with, e.g. "Header: Content-type: text/plain".
DECLARED_HEADER = re.compile(rb"^Header:\s*([A-Za-z-]+):[ \t]*(.*?)\s*$", re.MULTILINE)


def corpus_documents() -> list[Path]:
    if not CORPUS.is_dir():
        pytest.fail(
            f"The feedparser corpus is missing: expected it at {CORPUS} "
            "(shared/corpus/feedparser beside the repository clone). Copy shared/ next to the clone and rerun."
        )
    documents = sorted(CORPUS.rglob("*.xml"))
    assert len(documents) > 2000, f"only {len(documents)} documents under {CORPUS}; the corpus looks incomplete"
    return documents


def declared_headers(body: bytes) -> dict[str, str]:
    headers = {"Content-Type": "application/xml"}
    for name, value in DECLARED_HEADER.findall(body[:2048]):
        name = name.decode("ascii")
        headers = {k: v for k, v in headers.items() if k.lower() != name.lower()}
        headers[name] = value.decode("latin-1")
    return headers


def really_empty(body: bytes, headers: dict[str, str], url: str) -> bool:
    passed = {k.lower(): v for k, v in headers.items()} | {"content-location": url}
    result = feedparser.parse(io.BytesIO(body), response_headers=passed)
    return not result.bozo and not result.entries and bool(result.version)


def test_every_corpus_document_stores_entries_or_records_an_error(server, settings, caplog):
    # One test server stands for ~2,100 hosts.
    settings.FEEDS = {**settings.FEEDS, "MAX_CONCURRENCY": 50, "MAX_PER_HOST": 50}
    served = {}
    for path in corpus_documents():
        name = path.relative_to(CORPUS).as_posix()
        body = path.read_bytes()
        headers = declared_headers(body)
        url = server.feed(f"/corpus/{name}", body, headers=headers)
        served[url] = (body, headers)
    Feed.objects.bulk_create(Feed(name=url.rsplit("/corpus/", 1)[1][:200], feed_url=url) for url in served)

    with caplog.at_level(logging.ERROR):
        totals = refresh_all()

    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert totals["feeds_processed"] == len(served)
    stored, failed, empty = [], [], []
    for feed in Feed.objects.annotate(entry_count=Count("entries")):
        assert not feed.last_error.startswith("Unexpected error"), (feed.name, feed.last_error)
        if feed.entry_count:
            assert feed.last_error == "", (feed.name, feed.last_error)
            stored.append(feed.name)
        elif feed.last_error:
            assert feed.consecutive_failures == 1, feed.name
            failed.append(feed.name)
        else:
            assert really_empty(*served[feed.feed_url], feed.feed_url), f"{feed.name}: nothing stored, no error"
            empty.append(feed.name)
    assert totals["feeds_failed"] == len(failed)
    assert totals["entries_created"] == BlogEntry.objects.count()
    # The corpus covers all three outcomes in quantity; a collapse to one would mean a broken pipeline.
    assert len(stored) > 1000 and len(failed) > 100 and len(empty) > 100

    again = refresh_all()  # the same documents again: nothing new, nothing changed
    assert (again["entries_created"], again["entries_updated"]) == (0, 0)
    assert again["feeds_failed"] == len(failed)
