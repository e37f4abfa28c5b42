"""Compressed feeds are inflated in a stream that counts the inflated bytes against FEEDS_MAX_BYTES.

httpx's own decoding inflates a whole network chunk at once: 64 KB of gzip can be 64 MB,
so a handful of bombs at once would pass the worker's memory bound before any cap applied.
"""

import asyncio
import tracemalloc
import zlib

import pytest

from pydotorg.blogs.conf import feed_settings
from pydotorg.blogs.fetching import FetchError, build_client, fetch
from pydotorg.blogs.models import BlogEntry

from .helpers import make_feed, refresh_all
from .server import gzipped, item, rss

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("feed_settings")]

MB = 1024 * 1024
INFLATED = b"<rss>" + b" " * (100 * MB)  # ~100 KB compressed: one network chunk inflates to tens of MB


def raw_deflate(body: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(body) + compressor.flush()


def fetch_measured(url: str) -> tuple[BaseException | None, int]:
    """Fetch ``url`` as a refresh does; the error it ended with, and the peak of Python's allocations meanwhile."""
    config = feed_settings()

    async def once() -> None:
        async with build_client(config) as client:
            await fetch(client, url, config)

    tracemalloc.start()
    try:
        try:
            asyncio.run(once())
        except FetchError as exc:
            return exc, tracemalloc.get_traced_memory()[1]
        return None, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(("encoding", "compress"), [("gzip", gzipped), ("deflate", zlib.compress)])
def test_a_compression_bomb_is_refused_at_the_cap_with_little_memory(server, settings, encoding, compress):
    settings.FEEDS = {**settings.FEEDS, "MAX_BYTES": MB}
    body = compress(INFLATED)
    assert len(body) < 200 * 1024
    url = server.feed(f"/bomb.{encoding}", body, headers={"Content-Encoding": encoding})

    error, peak = fetch_measured(url)

    # The cap, what is in flight, and the client's own: not a network chunk inflated whole (tens of MB).
    assert peak < 4 * MB, f"the fetch allocated {peak / MB:.1f} MB at its peak"
    assert str(error) == (
        f"{url} sent more than the FEEDS_MAX_BYTES limit of {MB} bytes once decompressed ({encoding}); stopped reading."
    )


def test_a_compressed_feed_within_the_cap_is_stored(server, settings):
    settings.FEEDS = {**settings.FEEDS, "MAX_BYTES": MB}
    document = rss(*(item(n) for n in range(1, 4)))
    make_feed(server.feed("/gz", gzipped(document), headers={"Content-Encoding": "gzip"}), name="gzip")
    make_feed(server.feed("/zlib", zlib.compress(document), headers={"Content-Encoding": "deflate"}), name="zlib")
    make_feed(server.feed("/raw", raw_deflate(document), headers={"Content-Encoding": "deflate"}), name="raw")

    assert refresh_all()["entries_created"] == 9
    assert BlogEntry.objects.filter(feed__name="raw").count() == 3  # raw deflate, as some servers send


def test_a_body_that_is_not_what_its_encoding_says_is_a_clear_error(server):
    feed = make_feed(server.feed("/fake", b"<rss>not gzip at all</rss>", headers={"Content-Encoding": "gzip"}))

    assert refresh_all()["feeds_failed"] == 1

    feed.refresh_from_db()
    assert feed.last_error.startswith(f"{feed.feed_url} sent a body that is not valid gzip data (")


def test_an_encoding_that_was_not_asked_for_is_refused(server):
    feed = make_feed(server.feed("/br", b"\x1b\x00", headers={"Content-Encoding": "br"}))

    assert refresh_all()["feeds_failed"] == 1

    feed.refresh_from_db()
    assert feed.last_error == f"{feed.feed_url} sent its body as Content-Encoding 'br', which was not asked for."
