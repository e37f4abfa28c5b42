"""Search documents are the text a visitor reads; snippets keep it as written; no document is too big."""

from __future__ import annotations

import random

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from pydotorg.blogs.models import BlogEntry, Feed
from pydotorg.search import documents, rebuild
from pydotorg.search.backends.base import MARK_END, MARK_START
from pydotorg.search.backends.database import SearchBackend as DatabaseBackend
from pydotorg.search.models import SearchDocument
from pydotorg.search.snippets import HIGHLIGHT_CHARS, crop, make_snippet
from pydotorg.search.tasks import index_content, index_content_batch

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("db_backend")]

MARKDOWN = "# Hello\n\nThe zanzibarquux is a rare bird seen in **Python** land.\r\n"
RESTRUCTUREDTEXT = "Hello\n=====\n\nThe zanzibarquux is a rare bird seen in **Python** land.\r\n\n.. note:: Quiet.\n"


def search(q: str, **kw):
    return async_to_sync(DatabaseBackend().search)(q, **kw)


def api(client, q: str) -> dict:
    response = client.get("/api/search/", {"q": q})
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize(
    ("content_format", "content"), [("markdown", MARKDOWN), ("restructuredtext", RESTRUCTUREDTEXT)]
)
def test_a_page_is_indexed_as_its_rendered_text(make_page, content_format, content):
    page = make_page(title="Zanzibar", content=content, content_format=content_format)
    doc = documents.get_type("page").to_document(page)
    assert doc["content"].startswith("Hello The zanzibarquux is a rare bird seen in Python land.")
    assert not any(markup in doc["content"] for markup in ("#", "**", "===", "..", "<", "\r", "\n"))


def test_snippets_keep_the_leading_words_and_punctuation_and_the_api_gives_clean_text(client, make_page):
    page = make_page(title="Zanzibar", content=MARKDOWN)
    async_to_sync(index_content)({}, "page", page.pk)
    (hit,) = api(client, "zanzibarquux")["hits"]
    assert hit["snippet"] == "Hello The <mark>zanzibarquux</mark> is a rare bird seen in Python land."
    (hit,) = api(client, "python land")["hits"]
    assert hit["snippet"] == "Hello The zanzibarquux is a rare bird seen in <mark>Python</mark> <mark>land</mark>."


def make_entry(title: str, **fields) -> BlogEntry:
    feed, _ = Feed.objects.get_or_create(name="Planet", feed_url="https://planet.example/feed")
    return BlogEntry.objects.create(feed=feed, guid=title, title=title, pub_date=timezone.now(), **fields)


def test_a_blog_entry_is_indexed_as_the_words_of_its_stored_html(client):
    entry = make_entry(
        "Release",
        summary="<p>A <b>new</b>&nbsp;release&hellip;</p>",
        content="<p>First&#xe000;paragraph.</p><ul><li>one</li><li>two</li></ul><p>Last\r\nline.</p>",
    )
    doc = documents.get_type("blog").to_document(entry)
    assert doc["description"] == "A new release…"
    assert doc["content"] == "Firstparagraph. one two Last line."  # markers decoded from entities are dropped too
    async_to_sync(index_content)({}, "blog", entry.pk)
    (hit,) = api(client, "line")["hits"]
    assert "\r" not in hit["snippet"] and "\n" not in hit["snippet"] and "<mark>line</mark>." in hit["snippet"]


def test_a_snippet_starts_at_the_sentence_of_the_match_and_says_where_text_was_left_out():
    before, after = " ".join(f"w{n}" for n in range(30)), [f"v{n}" for n in range(40)]
    marked = f"{before}. The {MARK_START}quux{MARK_END} flies. {' '.join(after)}"
    assert crop(marked) == f"… The <mark>quux</mark> flies. {' '.join(after[:32])} …"  # 35 words in all
    assert crop(f"One two {MARK_START}quux{MARK_END}") == "One two <mark>quux</mark>"  # the leading words stay
    assert crop(f"A {MARK_START}quux{MARK_END}.", more_after=True) == "A <mark>quux</mark>. …"
    assert crop("x <b> & y") == "x &lt;b&gt; &amp; y"


def distinct_words(count: int, seed: int) -> str:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return " ".join("".join(rng.choice(letters) for _ in range(9)) for _ in range(count))


@pytest.fixture
def huge_and_normal_entries():
    # 2.5 MB of 250,000 distinct words, beside an ordinary entry.
    huge = make_entry("Huge entry", content=f"<p>openingword {distinct_words(250_000, 1)}</p>")
    normal = make_entry("Normal entry", content="<p>ordinary words</p>")
    return huge, normal


def test_indexed_text_is_capped_so_a_huge_entry_does_not_break_its_batch(huge_and_normal_entries):
    huge, normal = huge_and_normal_entries
    async_to_sync(index_content_batch)({}, "blog", [huge.pk, normal.pk])
    assert [hit.title for hit in search("ordinary").hits] == ["Normal entry"]
    assert [hit.title for hit in search("openingword").hits] == ["Huge entry"]
    stored = SearchDocument.objects.get(object_id=huge.pk)
    assert len(stored.title) + len(stored.description) + len(stored.content) <= documents.MAX_TEXT
    assert stored.content.startswith("openingword ") and not stored.content.endswith(" ")
    assert stored.content in documents.reader_text(huge.content)  # the start, cut at a word


def test_a_rebuild_with_a_huge_entry_succeeds(huge_and_normal_entries):
    result = async_to_sync(rebuild.rebuild_index)()
    assert result["documents"]["blog"] == 2
    assert {hit.title for hit in search("ordinary openingword").hits} == set()  # not one document with both
    assert [hit.title for hit in search("ordinary").hits] == ["Normal entry"]


def test_highlighting_reads_a_bounded_prefix(make_page):
    filler = "filler " * (HIGHLIGHT_CHARS // 7 + 10)
    page = make_page(title="Deep", content=f"Intro words. {filler}deepterm at the end.", content_format="html")
    async_to_sync(index_content)({}, "page", page.pk)
    (hit,) = search("deepterm").hits  # still found: the whole (capped) text is searched...
    assert hit.snippet.startswith("Intro words. filler") and hit.snippet.endswith("…")  # ...but not highlighted
    assert "<mark>" not in hit.snippet


def test_the_plain_backend_snippet_uses_the_same_cropping():
    assert make_snippet("Hello. The quux is a rare bird.", ["quux"]) == "Hello. The <mark>quux</mark> is a rare bird."
    assert make_snippet("x" * 10 + " quux " + "y " * HIGHLIGHT_CHARS, ["quux"]).endswith("…")
