"""Details of a feed's response that once lost its entries or broke every later refresh: validators
that are not ASCII, a Retry-After of Unicode digits, a permanent move to an over-long URL, character
references that are no character, and entry dates no page can show."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from pydotorg.blogs.models import BlogEntry, Feed
from pydotorg.blogs.tasks import FeedRefreshError

from .helpers import make_feed, refresh_one
from .server import item, respond, rss

pytestmark = pytest.mark.django_db


def refresh(url: str) -> dict:
    try:
        return refresh_one(url)
    except FeedRefreshError as exc:
        return {"error": str(exc)}


@pytest.mark.parametrize(
    ("header", "value"), [("ETag", '"caf\u00e9"'), ("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT caf\u00e9")]
)
def test_a_validator_that_is_not_ascii_is_not_stored_and_later_fetches_work(server, header, value):
    # The test server sends header values as latin-1: httpx reads byte 0xE9 back as "é".
    url = server.feed("/v.xml", rss(item(1)), headers={header: value})
    make_feed(url)
    assert refresh(url)["outcome"] == "stored"
    feed = Feed.objects.get()
    assert (feed.etag, feed.last_modified) == ("", "")
    assert refresh(url)["outcome"] == "stored"  # sent unconditionally, not refused by httpx
    assert Feed.objects.get().last_error == ""


def test_a_stored_validator_that_is_not_ascii_is_not_sent(server):
    url = server.feed("/v.xml", rss(item(1)))
    make_feed(url, etag='"caf\u00e9"', last_modified="caf\u00e9")  # stored before validators were checked
    assert refresh(url)["outcome"] == "stored"
    assert BlogEntry.objects.count() == 1


def test_a_retry_after_of_unicode_digits_is_a_plain_failure_not_a_bug(server):
    url = server.route("/busy.xml", lambda request: respond(request, 503, b"busy", {"Retry-After": "\u00b2"}))
    make_feed(url)
    refresh(url)
    feed = Feed.objects.get()
    assert feed.last_error.startswith(f"{url} answered HTTP 503"), feed.last_error
    assert feed.deferred_until is None


def test_a_permanent_move_to_a_url_longer_than_a_feed_url_keeps_the_url_and_stores_the_entries(server):
    long_path = "/long/" + "a" * 2100
    server.feed(long_path, rss(item(1)))
    url = server.route("/moved.xml", lambda request: respond(request, 301, b"", {"Location": long_path}))
    make_feed(url)
    assert refresh(url)["outcome"] == "stored"
    assert Feed.objects.get().feed_url == url
    assert BlogEntry.objects.count() == 1


@pytest.mark.parametrize("reference", ["&#xD800;", "&#x110000;", "&#55296;", "&#x0000000000000000000000041;"])
def test_a_character_reference_that_is_no_character_loses_no_entry(server, reference):
    url = server.feed("/ref.xml", rss(item(1), item(2, title=f"bad {reference} ref")))
    make_feed(url)
    assert refresh(url)["outcome"] == "stored"
    titles = sorted(BlogEntry.objects.values_list("title", flat=True))
    assert titles[0] == "Post 1"
    assert titles[1] in ("bad \ufffd ref", "bad A ref")


@pytest.mark.parametrize("date", ["Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 01 Jan 0001 00:00:00 GMT"])
def test_an_entry_date_no_page_can_show_is_replaced_by_the_fetch_time(server, client, settings, date):
    far = item(7).replace("Mon, 06 Sep 2021 16:07:00 +0000", date)
    url = server.feed("/dates.xml", rss(far, item(1)))
    make_feed(url)
    before = timezone.now()
    assert refresh(url)["outcome"] == "stored"
    entry = BlogEntry.objects.get(guid="urn:post:7")
    assert before - timedelta(seconds=1) <= entry.pub_date <= timezone.now()
    settings.TIME_ZONE = "Asia/Tokyo" if date.endswith("9999 23:59:59 GMT") else "America/New_York"  # overflows
    assert client.get("/").status_code == 200
    assert client.get("/blogs/").status_code == 200


def test_an_entry_date_a_little_ahead_is_kept(server):
    ahead = (timezone.now() + timedelta(hours=3)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    url = server.feed("/ahead.xml", rss(item(3).replace("Mon, 06 Sep 2021 16:03:00 +0000", ahead)))
    make_feed(url)
    refresh(url)
    assert BlogEntry.objects.get().pub_date.strftime("%a, %d %b %Y %H:%M:%S +0000") == ahead


def test_an_entry_stored_with_an_unshowable_date_before_dates_were_checked_gets_the_fetch_time(
    server, client, settings
):
    url = server.feed("/undated.xml", rss(item(5).replace("<pubDate>Mon, 06 Sep 2021 16:05:00 +0000</pubDate>", "")))
    feed = make_feed(url)
    far = datetime(9999, 12, 31, 23, 0, tzinfo=UTC)
    BlogEntry.objects.create(feed=feed, guid="urn:post:5", title="Post 5", pub_date=far)
    before = timezone.now()
    assert refresh(url)["outcome"] == "stored"
    assert BlogEntry.objects.get().pub_date >= before - timedelta(seconds=1)
    settings.TIME_ZONE = "Asia/Tokyo"  # east of UTC: 9999-12-31 23:00 UTC would be year 10000 here
    assert client.get("/").status_code == 200 and client.get("/blogs/").status_code == 200


def test_the_migration_gives_unshowable_stored_dates_their_first_seen_time():
    import importlib

    from django.apps import apps

    migration = importlib.import_module("pydotorg.blogs.migrations.0003_alter_blogentry_pub_date_alter_feed_feed_url")
    feed = make_feed("https://example.org/m.xml")
    far = datetime(9999, 6, 1, tzinfo=UTC)
    bad = BlogEntry.objects.create(feed=feed, guid="far", title="Far", pub_date=far)
    fine = BlogEntry.objects.create(feed=feed, guid="fine", title="Fine", pub_date=timezone.now())
    migration.first_seen_for_unshowable_dates(apps, None)
    bad.refresh_from_db()
    assert bad.pub_date == bad.created
    assert BlogEntry.objects.get(pk=fine.pk).pub_date == fine.pub_date
