"""An entry's identity is its id as the document writes it: a move or an http-to-https edit adds no rows."""

import ssl
import subprocess

import pytest
from django.urls import reverse

from pydotorg.blogs.models import BlogEntry, Feed
from pydotorg.blogs.parsing import parse_feed

from .helpers import make_feed, refresh_all
from .server import respond, rss, serving

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("feed_settings")]

# <guid> without isPermaLink is a permalink, so feedparser resolved it against the fetch address.
SPRING = rss(
    "<guid>post-17</guid><title>Spring meeting</title><pubDate>Mon, 06 Sep 2021 16:00:00 +0000</pubDate>"
    "<description>See you there.</description>"
)


def test_a_relative_guid_is_stored_as_written_and_only_the_link_is_resolved(server):
    url = server.feed("/rel/feed.xml", SPRING)
    make_feed(url)
    refresh_all()
    entry = BlogEntry.objects.get()
    assert entry.guid == "post-17"
    assert entry.url == server.url("/rel/post-17")


def test_a_permanent_move_adds_no_rows(server):
    feed = make_feed(server.feed("/rel/feed.xml", SPRING))
    assert refresh_all()["entries_created"] == 1

    moved = server.url("/rel/feed.xml", host="localhost")  # the same server under another name

    def moved_permanently(request):
        if request.headers["Host"].startswith("localhost"):
            return respond(request, 200, SPRING)  # the document, unchanged
        return respond(request, 301, headers={"Location": moved})

    server.route("/rel/feed.xml", moved_permanently)

    totals = refresh_all()

    feed.refresh_from_db()
    assert feed.feed_url == moved
    assert totals["entries_created"] == 0 and totals["feeds_failed"] == 0
    (entry,) = BlogEntry.objects.all()
    assert (entry.guid, entry.title) == ("post-17", "Spring meeting")
    assert entry.url == f"{moved.rsplit('/', 1)[0]}/post-17"  # the link follows the feed


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for localhost and 127.0.0.1, trusted through SSL_CERT_FILE."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_server(certificate, monkeypatch):
    cert, key = certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # httpx's default context trusts it
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with serving() as server:
        server.socket = context.wrap_socket(server.socket, server_side=True)
        yield server


def test_an_edit_from_http_to_https_adds_no_rows(server, tls_server, admin_client):
    feed = make_feed(server.feed("/rel/feed.xml", SPRING), name="Meetings")
    assert refresh_all()["entries_created"] == 1
    tls_server.feed("/rel/feed.xml", SPRING)
    https = f"https://localhost:{tls_server.server_port}/rel/feed.xml"

    response = admin_client.post(
        reverse("admin:blogs_feed_change", args=[feed.pk]),
        {"name": "Meetings", "feed_url": https, "website_url": "", "is_active": "on"},
    )
    assert response.status_code == 302
    totals = refresh_all()

    assert totals["entries_created"] == 0 and totals["feeds_failed"] == 0
    assert Feed.objects.get().feed_url == https
    (entry,) = BlogEntry.objects.all()
    assert entry.guid == "post-17"
    # Fetched over TLS from 127.0.0.1, verified as "localhost": the name is kept for SNI and the certificate.
    (request,) = tls_server.requests_to("/rel/feed.xml")
    assert request.headers["host"] == f"localhost:{tls_server.server_port}"


def test_rows_stored_with_a_resolved_guid_take_the_written_one(server):
    """Rows the old code stored ("http://host/rel/post-17") are matched on that form, not duplicated."""
    url = server.feed("/rel/feed.xml", SPRING)
    feed = make_feed(url)
    old = BlogEntry.objects.create(
        feed=feed, guid=server.url("/rel/post-17"), title="Spring meeting", pub_date="2021-09-06T16:00:00Z"
    )

    totals = refresh_all()

    assert totals["entries_created"] == 0
    (entry,) = BlogEntry.objects.all()
    assert (entry.pk, entry.guid) == (old.pk, "post-17")
    assert refresh_all()["entries_created"] == 0  # and from now on it is found by its own id


def test_a_legacy_form_that_is_another_entrys_id_is_left_to_that_entry(server):
    absolute = server.url("/rel/post-17")
    doc = rss("<guid>post-17</guid><title>Relative</title>", f"<guid>{absolute}</guid><title>Absolute</title>")
    feed = make_feed(server.feed("/rel/feed.xml", doc))
    BlogEntry.objects.create(feed=feed, guid=absolute, title="Absolute", pub_date="2021-09-06T16:00:00Z")

    assert refresh_all()["entries_created"] == 1

    assert dict(BlogEntry.objects.values_list("guid", "title")) == {"post-17": "Relative", absolute: "Absolute"}


@pytest.mark.parametrize(
    "document",
    [
        rss('<guid isPermaLink="false">post-17</guid><title>t</title>'),
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>a</title><id>urn:f</id>'
        b"<entry><id>post-17</id><title>t</title></entry></feed>",
        b'<feed xmlns="http://www.w3.org/2005/Atom" xml:base="http://elsewhere.example/base/"><title>a</title>'
        b"<id>urn:f</id><entry><id>post-17</id><title>t</title><link href='p/17'/></entry></feed>",
    ],
    ids=["rss-not-permalink", "atom-id", "atom-id-with-xml-base"],
)
def test_ids_are_kept_exactly_as_written_whatever_the_base(document):
    (entry,) = parse_feed(document, {}, "http://feeds.example/a/feed.xml").entries
    assert entry.guid == "post-17"
    (other,) = parse_feed(document, {}, "https://mirror.example/b/feed.xml").entries
    assert other.guid == "post-17"


# --- entries without a guid: their identity is their link as written ----------------------------

# No guid: the entry is known by its link, which is relative, so it depends on where it is resolved.
AUTUMN = rss(
    "<link>posts/autumn-meeting</link><title>Autumn meeting</title>"
    "<pubDate>Mon, 04 Oct 2021 16:00:00 +0000</pubDate><description>Bring a friend.</description>"
)


def moved_to(server, new: str, status: int):
    """A handler that answers ``status`` to ``new`` on the server's own name, and the document under ``new``'s."""

    def handler(request):
        if request.headers["Host"].startswith("localhost"):
            return respond(request, 200, AUTUMN)
        return respond(request, status, headers={"Location": new})

    return handler


@pytest.mark.parametrize("status", [301, 302])
def test_a_guidless_entry_is_not_stored_again_after_a_redirect(server, status):
    feed = make_feed(server.feed("/rel/feed.xml", AUTUMN))
    assert refresh_all()["entries_created"] == 1
    new = server.url("/elsewhere/feed.xml", host="localhost")  # another name and another path
    server.route("/rel/feed.xml", moved_to(server, new, status))
    server.feed("/elsewhere/feed.xml", AUTUMN)

    totals = refresh_all()

    assert totals["entries_created"] == 0 and totals["feeds_failed"] == 0
    (entry,) = BlogEntry.objects.all()
    assert entry.guid == "posts/autumn-meeting"
    assert entry.url == server.url("/elsewhere/posts/autumn-meeting", host="localhost")  # the link follows it
    feed.refresh_from_db()
    assert feed.feed_url == (new if status == 301 else server.url("/rel/feed.xml"))


def test_a_guidless_entry_is_not_stored_again_when_another_origin_serves_the_feed(server, tls_server):
    """An edit from http to https: another scheme, port and name serve the same document."""
    feed = make_feed(server.feed("/rel/feed.xml", AUTUMN), name="Meetings")
    assert refresh_all()["entries_created"] == 1
    tls_server.feed("/rel/feed.xml", AUTUMN)
    Feed.objects.filter(pk=feed.pk).update(feed_url=f"https://localhost:{tls_server.server_port}/rel/feed.xml")

    totals = refresh_all()

    assert totals["entries_created"] == 0 and totals["feeds_failed"] == 0
    (entry,) = BlogEntry.objects.all()
    assert entry.url == f"https://localhost:{tls_server.server_port}/rel/posts/autumn-meeting"


@pytest.mark.parametrize("status", [301, 302])
def test_rows_stored_under_the_resolved_link_are_matched_across_a_move(server, status):
    """Rows the old code stored ("http://127.0.0.1:port/rel/posts/...") are found after the feed moved, not copied."""
    feed = make_feed(server.feed("/rel/feed.xml", AUTUMN))
    old = BlogEntry.objects.create(
        feed=feed, guid=server.url("/rel/posts/autumn-meeting"), title="Autumn meeting", pub_date="2021-10-04T16:00Z"
    )
    new = server.url("/elsewhere/feed.xml", host="localhost")
    server.route("/rel/feed.xml", moved_to(server, new, status))
    server.feed("/elsewhere/feed.xml", AUTUMN)

    assert refresh_all()["entries_created"] == 0

    (entry,) = BlogEntry.objects.all()
    assert (entry.pk, entry.guid) == (old.pk, "posts/autumn-meeting")
    assert refresh_all()["entries_created"] == 0  # and from now on it is found by its link as written


def test_a_guidless_link_under_the_feeds_own_xml_base_is_resolved_against_it():
    document = (
        b'<feed xmlns="http://www.w3.org/2005/Atom" xml:base="http://blog.example/journal/"><title>a</title>'
        b"<id>urn:f</id><entry><title>t</title><link href='p/17'/></entry></feed>"
    )
    for fetched_from in ("http://feeds.example/a/feed.xml", "https://mirror.example/b/feed.xml"):
        (entry,) = parse_feed(document, {}, fetched_from).entries
        assert (entry.guid, entry.url) == ("http://blog.example/journal/p/17", "http://blog.example/journal/p/17")
