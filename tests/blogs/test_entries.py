"""What a refresh stores: guids, upserts, dates, clean HTML, bozo documents."""

import logging
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from pydotorg.blogs.models import BlogEntry
from tasks_app.models import OutboxEntry

from .helpers import make_feed, refresh_all
from .server import item, rss

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("feed_settings")]


def test_a_rerun_creates_nothing_and_changes_update_in_place(server):
    feed = make_feed(server.feed("/blog", rss(item(1), item(2), item(3))))
    assert refresh_all()["entries_created"] == 3
    ids = dict(BlogEntry.objects.values_list("guid", "id"))

    again = refresh_all()  # the server sends no validators, so this is a full 200 again
    assert (again["entries_created"], again["entries_updated"]) == (0, 0)

    server.feed("/blog", rss(item(1), item(2, title="Post 2, revised"), item(3)))
    changed = refresh_all()
    assert (changed["entries_created"], changed["entries_updated"]) == (0, 1)
    assert dict(BlogEntry.objects.values_list("guid", "id")) == ids
    assert BlogEntry.objects.get(feed=feed, guid="urn:post:2").title == "Post 2, revised"


def test_changed_content_updates_the_row(server):
    make_feed(server.feed("/c", rss("<guid>g</guid><title>T</title><description>old body</description>")))
    refresh_all()
    server.feed("/c", rss("<guid>g</guid><title>T</title><description>new body</description>"))
    assert refresh_all()["entries_updated"] == 1
    assert BlogEntry.objects.get().summary == "new body"


def test_entry_with_no_id_and_no_link_gets_a_stable_hash_guid(server):
    doc = rss(
        "<title>Anonymous</title><description>No id, no link</description>",
        "<title>Dated</title><pubDate>Tue, 07 Sep 2021 10:00:00 +0000</pubDate>",
        "",  # nothing at all: still no crash
        item(9),
    )
    make_feed(server.feed("/anon", doc))
    assert refresh_all()["entries_created"] == 4
    guids = set(BlogEntry.objects.values_list("guid", flat=True))
    assert "urn:post:9" in guids
    hashed = {g for g in guids if g.startswith("sha256:")}
    assert len(hashed) == 3

    assert refresh_all()["entries_created"] == 0  # the same hashes on the next run
    assert set(BlogEntry.objects.values_list("guid", flat=True)) == guids
    assert BlogEntry.objects.filter(guid__in=hashed, title="(untitled)").count() == 1


def test_link_is_the_guid_when_there_is_no_id(server):
    make_feed(server.feed("/l", rss("<title>L</title><link>http://example.org/only-link</link>")))
    refresh_all()
    assert BlogEntry.objects.get().guid == "http://example.org/only-link"


def test_the_same_guid_in_two_feeds_is_two_entries(server):
    doc = rss(item(1))
    first = make_feed(server.feed("/a", doc), name="A")
    second = make_feed(server.feed("/b", doc), name="B")
    assert refresh_all()["entries_created"] == 2
    assert sorted(BlogEntry.objects.filter(guid="urn:post:1").values_list("feed_id", flat=True)) == sorted(
        [first.pk, second.pk]
    )


def test_a_guid_repeated_within_one_document_is_stored_once(server):
    make_feed(server.feed("/rep", rss(item(1), item(1, title="Second copy"))))
    assert refresh_all()["entries_created"] == 1
    assert BlogEntry.objects.get().title == "Post 1"


def test_pub_date_is_published_else_updated_else_fetch_time(server):
    atom = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><id>urn:f</id><updated>2024-01-01T00:00:00Z</updated>
<entry><id>urn:pub</id><title>p</title><published>2020-05-01T12:00:00+02:00</published>
  <updated>2021-01-01T00:00:00Z</updated></entry>
<entry><id>urn:upd</id><title>u</title><updated>2021-03-04T05:06:07Z</updated></entry>
<entry><id>urn:none</id><title>n</title></entry>
</feed>"""
    make_feed(server.feed("/dates", atom, headers={"Content-Type": "application/atom+xml"}))
    before = timezone.now()
    refresh_all()
    after = timezone.now()
    dates = dict(BlogEntry.objects.values_list("guid", "pub_date"))
    assert dates["urn:pub"] == datetime(2020, 5, 1, 10, 0, tzinfo=UTC)
    assert dates["urn:upd"] == datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert before <= dates["urn:none"] <= after
    assert all(timezone.is_aware(d) for d in dates.values())

    assert refresh_all()["entries_updated"] == 0  # the fallback date is kept, not renewed each run
    assert BlogEntry.objects.get(guid="urn:none").pub_date == dates["urn:none"]


def test_html_is_sanitised_and_plain_text_escaped(server):
    atom = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><id>urn:f</id>
<entry><id>urn:html</id><title type="html">&lt;b&gt;Bold&lt;/b&gt; &amp;amp; title</title>
  <link href="javascript:alert(1)"/>
  <content type="html">&lt;p onclick="steal()"&gt;Hi&lt;script&gt;alert(1)&lt;/script&gt;&lt;/p&gt;</content>
  <summary type="text">1 &lt; 2 &amp; &lt;i&gt;not markup&lt;/i&gt;</summary></entry>
</feed>"""
    make_feed(server.feed("/html", atom, headers={"Content-Type": "application/atom+xml"}))
    refresh_all()
    entry = BlogEntry.objects.get()
    assert entry.title == "Bold & title"
    assert entry.content == "<p>Hi</p>"
    assert entry.summary == "1 &lt; 2 &amp; &lt;i&gt;not markup&lt;/i&gt;"
    assert entry.url == ""  # javascript: links are dropped


def test_over_long_titles_and_urls_fit_their_fields(server):
    long_link = "http://example.org/" + "a" * 2100
    long_id = "urn:" + "i" * 1200
    doc = rss(f"<guid>{long_id}</guid><title>{'T' * 700}</title><link>{long_link}</link>")
    make_feed(server.feed("/long", doc))
    assert refresh_all()["entries_created"] == 1
    entry = BlogEntry.objects.get()
    assert len(entry.title) == 500 and entry.title.endswith("…")
    assert entry.url == ""  # a cut URL would be a broken link
    assert entry.guid.startswith("sha256:")  # a cut guid could collide; its hash cannot
    assert refresh_all()["entries_created"] == 0


def test_bozo_document_with_entries_is_stored_with_a_warning(server, caplog):
    broken = rss(item(1), item(2)).replace(b"</channel></rss>", b"<unclosed></channel></rss>")
    feed = make_feed(server.feed("/bozo", broken))
    with caplog.at_level(logging.WARNING, logger="pydotorg.blogs"):
        totals = refresh_all()
    assert totals["entries_created"] == 2 and totals["feeds_failed"] == 0
    assert any("stored with a warning" in r.getMessage() for r in caplog.records)
    feed.refresh_from_db()
    assert feed.last_error == "" and feed.consecutive_failures == 0


def test_bozo_document_without_entries_is_an_error(server):
    feed = make_feed(server.feed("/junk", b"<rss><channel><title>unfinished"))
    assert refresh_all()["feeds_failed"] == 1
    feed.refresh_from_db()
    assert "is not a parseable feed" in feed.last_error
    assert feed.etag == ""


def test_well_formed_xml_that_is_not_a_feed_is_an_error(server):
    page = b'<html xmlns="http://www.w3.org/1999/xhtml"><body><p>Hello</p></body></html>'
    feed = make_feed(server.feed("/page", page, headers={"Content-Type": "application/xml"}))
    assert refresh_all()["feeds_failed"] == 1
    feed.refresh_from_db()
    assert "is not an RSS or Atom feed" in feed.last_error


def test_a_valid_feed_with_no_entries_is_a_success(server):
    feed = make_feed(server.feed("/empty", rss()))
    totals = refresh_all()
    assert totals["feeds_failed"] == 0 and totals["entries_created"] == 0
    feed.refresh_from_db()
    assert feed.last_error == "" and feed.last_fetched is not None


def test_failed_parse_does_not_store_the_new_etag(server):
    """Otherwise the next fetch would be a 304 and the feed's entries would never be read."""
    feed = make_feed(server.feed("/bad", b"not xml at all <", headers={"ETag": '"bad"'}))
    refresh_all()
    feed.refresh_from_db()
    assert feed.etag == "" and feed.consecutive_failures == 1


def test_new_and_changed_entries_are_scheduled_for_search_in_batches(server, settings):
    settings.FEEDS = {**settings.FEEDS, "MAX_ENTRIES": 2000}
    items = [item(n) for n in range(1, 1201)]
    make_feed(server.feed("/many", rss(*items)))
    refresh_all()

    batches = [e for e in OutboxEntry.objects.order_by("id") if e.payload["function"] == "index_content_batch"]
    scheduled = sorted(i for e in batches for i in e.payload["kwargs"]["ids"])
    assert scheduled == sorted(BlogEntry.objects.values_list("id", flat=True))
    assert len(batches) == 3  # 1,200 entries, a handful of jobs, not 1,200
    assert {e.payload["kwargs"]["content_type"] for e in batches} == {"blog"}

    OutboxEntry.objects.all().delete()
    refresh_all()
    assert OutboxEntry.objects.count() == 0  # unchanged entries are not re-indexed

    server.feed("/many", rss(item(1, title="Edited"), *items[1:]))
    refresh_all()
    (job,) = OutboxEntry.objects.all()
    assert job.payload["kwargs"] == {"content_type": "blog", "content_id": BlogEntry.objects.get(title="Edited").pk}


def test_nul_characters_are_dropped_rather_than_crashing_the_store(server):
    """The loose parser passes NUL through; PostgreSQL text cannot hold it."""
    doc = b'<rss version="2.0"><channel><item><guid>n</guid><title>a\x00b</title><description>x&#0;y</description>'
    make_feed(server.feed("/nul", doc + b"</item></channel></rss>"))
    assert refresh_all()["entries_created"] == 1
    entry = BlogEntry.objects.get()
    assert (entry.title, entry.summary) == ("ab", "xy")
