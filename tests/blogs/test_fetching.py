"""HTTP behaviour of a refresh, against a real server on loopback: validators, redirects, errors, limits."""

import time

import pytest

from pydotorg.blogs.models import BlogEntry, Feed

from .helpers import make_feed, refresh_all, refresh_one
from .server import Stats, gzipped, item, respond, rss, stream_forever

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("feed_settings")]

DOC = rss(item(1), item(2))


def conditional(body: bytes, *, etag: str | None = None, last_modified: str | None = None):
    """A route that answers 304 when the request carries the validator it handed out."""

    def handler(request):
        headers = {}
        if etag is not None:
            headers["ETag"] = etag
            if request.headers.get("If-None-Match") == etag:
                return respond(request, 304, headers=headers)
        if last_modified is not None:
            headers["Last-Modified"] = last_modified
            if request.headers.get("If-Modified-Since") == last_modified:
                return respond(request, 304, headers=headers)
        return respond(request, 200, body, headers)

    return handler


def test_etag_is_stored_exactly_and_sent_back_for_a_304(server):
    etag = 'W/"abc-123"'
    feed = make_feed(server.route("/etag", conditional(DOC, etag=etag)))

    first = refresh_all()
    feed.refresh_from_db()
    assert feed.etag == etag and feed.last_modified == ""
    assert first["entries_created"] == 2

    second = refresh_all()
    assert second == {
        "feeds_processed": 1,
        "feeds_unchanged": 1,
        "feeds_deferred": 0,
        "feeds_failed": 0,
        "entries_created": 0,
        "entries_updated": 0,
    }
    sent = server.requests_to("/etag")
    assert "if-none-match" not in sent[0].headers
    assert sent[1].headers["if-none-match"] == etag
    feed.refresh_from_db()
    assert feed.etag == etag  # a 304 keeps the validator


def test_last_modified_is_stored_exactly_and_sent_back_for_a_304(server):
    stamp = "Tue, 15 Nov 1994 12:45:26 GMT"
    feed = make_feed(server.route("/lm", conditional(DOC, last_modified=stamp)))

    refresh_all()
    feed.refresh_from_db()
    assert feed.last_modified == stamp and feed.etag == ""

    assert refresh_all()["feeds_unchanged"] == 1
    assert server.requests_to("/lm")[1].headers["if-modified-since"] == stamp
    assert BlogEntry.objects.filter(feed=feed).count() == 2


def test_a_304_that_omits_the_validators_keeps_the_stored_ones(server):
    feed = make_feed(server.route("/bare304", lambda r: respond(r, 304)), etag='"v1"', last_modified="yesterday")
    assert refresh_all()["feeds_unchanged"] == 1
    feed.refresh_from_db()
    assert (feed.etag, feed.last_modified) == ('"v1"', "yesterday")
    assert feed.last_fetched is not None and feed.consecutive_failures == 0


@pytest.mark.parametrize("status", [301, 308])
def test_permanent_redirect_updates_the_feed_url(server, status):
    new_url = server.feed("/new", DOC)
    feed = make_feed(server.route("/old", lambda r: respond(r, status, headers={"Location": "/new"})))

    totals = refresh_all()

    feed.refresh_from_db()
    assert feed.feed_url == new_url
    assert totals["entries_created"] == 2 and totals["feeds_failed"] == 0
    refresh_all()
    assert len(server.requests_to("/old")) == 1  # the next refresh goes straight to the new address


def test_temporary_redirect_keeps_the_feed_url(server):
    server.feed("/elsewhere", DOC)
    url = server.route("/temp", lambda r: respond(r, 302, headers={"Location": "/elsewhere"}))
    feed = make_feed(url)
    assert refresh_all()["entries_created"] == 2
    feed.refresh_from_db()
    assert feed.feed_url == url


def test_permanent_redirect_onto_another_feeds_url_is_handled(server):
    taken = make_feed(server.feed("/taken", DOC), name="Original")
    moved = make_feed(server.route("/dup", lambda r: respond(r, 301, headers={"Location": "/taken"})), name="Dup")

    totals = refresh_all()

    moved.refresh_from_db()
    assert not moved.is_active
    assert moved.feed_url.endswith("/dup")
    assert f"feed {taken.pk} ('Original') already fetches" in moved.last_error
    assert totals["feeds_failed"] == 1
    assert BlogEntry.objects.filter(feed=moved).count() == 0
    assert BlogEntry.objects.filter(feed=taken).count() == 2


def test_410_deactivates_the_feed(server):
    feed = make_feed(server.route("/gone", lambda r: respond(r, 410)))
    assert refresh_all()["feeds_failed"] == 1
    feed.refresh_from_db()
    assert not feed.is_active
    assert "410 Gone" in feed.last_error and feed.consecutive_failures == 1
    assert refresh_all()["feeds_processed"] == 0  # inactive feeds are left alone


def test_500_is_recorded_and_counted_until_the_feed_recovers(server):
    url = server.route("/flaky", lambda r: respond(r, 500, b"oops"))
    feed = make_feed(url)

    assert refresh_all()["feeds_failed"] == 1
    assert refresh_all()["feeds_failed"] == 1
    feed.refresh_from_db()
    assert feed.last_error == f"{url} answered HTTP 500 Internal Server Error."
    assert feed.consecutive_failures == 2 and feed.last_fetched is None and feed.is_active

    server.feed("/flaky", DOC)
    assert refresh_all()["feeds_failed"] == 0
    feed.refresh_from_db()
    assert (feed.last_error, feed.consecutive_failures) == ("", 0)
    assert feed.last_fetched is not None


def test_slow_server_hits_the_read_timeout(server, settings):
    settings.FEEDS = {**settings.FEEDS, "READ_TIMEOUT": 0.3}
    feed = make_feed(server.feed("/slow", DOC, delay=2))
    assert refresh_all()["feeds_failed"] == 1
    feed.refresh_from_db()
    assert "Timed out" in feed.last_error and "ReadTimeout" in feed.last_error


def test_trickling_server_hits_the_overall_deadline(server, settings):
    """Each byte arrives well within the read timeout, but the whole body never does."""
    settings.FEEDS = {**settings.FEEDS, "DEADLINE": 0.5}
    stats = Stats()

    def trickle(request):
        request.send_response(200)
        request.send_header("Content-Length", "1000")
        request.end_headers()
        try:
            while stats.sent < 1000:
                time.sleep(0.05)
                request.wfile.write(b" ")
                request.wfile.flush()
                stats.sent += 1
        except (BrokenPipeError, ConnectionResetError):
            stats.client_hung_up = True

    feed = make_feed(server.route("/trickle", trickle))
    assert refresh_all()["feeds_failed"] == 1
    feed.refresh_from_db()
    assert "within the 0.5 s deadline" in feed.last_error


def test_endless_body_is_refused_before_it_is_read(server, settings):
    settings.FEEDS = {**settings.FEEDS, "MAX_BYTES": 64 * 1024}
    stats = Stats()
    limit = 1024**3  # the server would send 1 GiB if the client kept reading
    feed = make_feed(server.route("/endless", stream_forever(stats, b"<!-- padding -->" * 4096, limit)))

    assert refresh_all()["feeds_failed"] == 1

    feed.refresh_from_db()
    assert "more than the FEEDS_MAX_BYTES limit of 65536 bytes" in feed.last_error
    assert stats.finished.wait(10)
    assert stats.client_hung_up
    assert stats.sent < 64 * 1024**2  # what loopback socket buffers absorbed, nowhere near 1 GiB


def test_declared_oversize_body_is_refused_without_reading_it(server, settings):
    settings.FEEDS = {**settings.FEEDS, "MAX_BYTES": 64 * 1024}
    stats = Stats()
    big = 500 * 1024**2
    feed = make_feed(server.route("/big", stream_forever(stats, b"x" * 65536, big, declared_length=big)))

    refresh_all()

    feed.refresh_from_db()
    assert f"sent {big} bytes, over the FEEDS_MAX_BYTES limit of 65536; not read" in feed.last_error
    assert stats.finished.wait(10) and stats.client_hung_up


def test_gzip_is_accepted_and_decoded(server):
    feed = make_feed(server.feed("/gz", gzipped(DOC), headers={"Content-Encoding": "gzip"}))
    assert refresh_all()["entries_created"] == 2
    assert "gzip" in server.requests_to("/gz")[0].headers["accept-encoding"]
    assert sorted(BlogEntry.objects.filter(feed=feed).values_list("title", flat=True)) == ["Post 1", "Post 2"]


def test_gzip_bomb_is_capped_on_the_decoded_size(server, settings):
    settings.FEEDS = {**settings.FEEDS, "MAX_BYTES": 1024 * 1024}
    bomb = gzipped(b"<rss>" + b" " * (50 * 1024**2))  # ~50 KB on the wire, 50 MB decoded
    feed = make_feed(server.feed("/bomb", bomb, headers={"Content-Encoding": "gzip"}))
    assert refresh_all()["feeds_failed"] == 1
    feed.refresh_from_db()
    assert "FEEDS_MAX_BYTES" in feed.last_error


def test_non_utf8_documents_are_decoded_by_their_declared_charset(server):
    latin = rss(item(1, title="Café crème"), encoding="iso-8859-1")
    cp1252 = "<rss version='2.0'><channel><title>t</title><item><title>“Quoted” £5</title><guid>g</guid></item>"
    cp1252 += "</channel></rss>"
    make_feed(server.feed("/latin", latin), name="latin")
    make_feed(
        server.feed("/cp1252", cp1252.encode("cp1252"), headers={"Content-Type": "text/xml; charset=windows-1252"}),
        name="cp1252",
    )
    assert refresh_all()["entries_created"] == 2
    assert set(BlogEntry.objects.values_list("title", flat=True)) == {"Café crème", "“Quoted” £5"}


def test_requests_carry_a_user_agent_naming_the_site(server, settings):
    settings.FEEDS = {**settings.FEEDS, "USER_AGENT": "python.org feed aggregator (+https://www.python.org/blogs/)"}
    make_feed(server.feed("/ua", DOC))
    refresh_all()
    headers = server.requests_to("/ua")[0].headers
    assert headers["user-agent"] == "python.org feed aggregator (+https://www.python.org/blogs/)"
    assert "application/rss+xml" in headers["accept"]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/feed.xml", "gopher://127.0.0.1/1"])
def test_non_http_feed_urls_are_refused(url):
    feed = make_feed(url)
    assert refresh_all()["feeds_failed"] == 1
    feed.refresh_from_db()
    assert "only http and https are fetched" in feed.last_error
    assert BlogEntry.objects.count() == 0


def test_redirect_to_a_non_http_scheme_is_refused(server):
    feed = make_feed(server.route("/sneaky", lambda r: respond(r, 301, headers={"Location": "file:///etc/passwd"})))
    assert refresh_all()["feeds_failed"] == 1
    feed.refresh_from_db()
    assert "Redirect from" in feed.last_error and "'file'" in feed.last_error
    assert feed.feed_url.endswith("/sneaky")


def test_redirect_loops_stop_at_the_limit(server, settings):
    settings.FEEDS = {**settings.FEEDS, "MAX_REDIRECTS": 3}
    feed = make_feed(server.route("/loop", lambda r: respond(r, 302, headers={"Location": "/loop"})))
    assert refresh_all()["feeds_failed"] == 1
    feed.refresh_from_db()
    assert "Too many redirects: more than 3" in feed.last_error
    assert len(server.requests_to("/loop")) == 4


def test_connection_refused_is_recorded(feed_settings):
    feed = make_feed("http://127.0.0.1:9/feed.xml")  # the discard port: nothing listens
    assert refresh_all()["feeds_failed"] == 1
    feed.refresh_from_db()
    assert "Could not fetch http://127.0.0.1:9/feed.xml: ConnectError" in feed.last_error


def test_refresh_single_feed_fails_loudly_on_an_unknown_url():
    from pydotorg.blogs.tasks import FeedRefreshError

    with pytest.raises(FeedRefreshError, match=r"No feed has the URL 'http://nowhere.example/x'"):
        refresh_one("http://nowhere.example/x")


def test_refresh_single_feed_raises_when_the_fetch_fails_and_records_it(server):
    from pydotorg.blogs.tasks import FeedRefreshError

    url = server.route("/down", lambda r: respond(r, 503))
    make_feed(url)
    with pytest.raises(FeedRefreshError, match="HTTP 503"):
        refresh_one(url)
    assert Feed.objects.get(feed_url=url).consecutive_failures == 1


def test_refresh_single_feed_refreshes_one_feed(server):
    url = server.feed("/one", DOC)
    make_feed(url)
    make_feed(server.feed("/other", DOC), name="other")
    assert refresh_one(url) == {"outcome": "stored", "entries_created": 2, "entries_updated": 0}
    assert server.requests_to("/other") == []
