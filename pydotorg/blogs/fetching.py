"""Fetching one feed politely and safely with httpx, from public internet addresses only.

Every way a fetch can go wrong ends in a ``FetchError`` whose message is what
the admin sees in the feed's ``last_error``: it names the problem and the URL.

Every connection, for the feed URL and for each redirect, goes through
:class:`PublicOnlyBackend`: it resolves the host once, refuses it unless every
address is public (``addresses``), and connects to the address it checked. The
URL, the ``Host`` header and TLS (SNI and certificate checks) keep the host name,
so a second, different DNS answer (DNS rebinding) is never used.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpcore
import httpx

from . import addresses
from .conf import FeedSettings

ALLOWED_SCHEMES = ("http", "https")
PERMANENT_REDIRECTS = (301, 308)
# Statuses whose Retry-After asks us to come back later; the feed is skipped until then.
RETRY_LATER_STATUSES = (429, 503)
# However long a server asks for, a feed is tried again within a week (a typo or a hostile
# server must not silence a feed for years).
MAX_RETRY_AFTER = timedelta(days=7)
ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1"
)


class FetchError(Exception):
    """The fetch produced nothing usable; the message is recorded on the feed."""


class FeedGone(FetchError):
    """The server answered 410 Gone: the feed should be deactivated."""


class RetryLater(FetchError):
    """The server answered 429 or 503 with a Retry-After: not a failure, the feed waits until ``until``."""

    def __init__(self, message: str, until: datetime) -> None:
        super().__init__(message)
        self.until = until


@dataclass(frozen=True)
class FetchResult:
    url: str  # the URL that finally answered
    moved_to: str | None  # the new address if every redirect on the way was permanent (301/308)
    not_modified: bool
    content: bytes | bytearray
    headers: dict[str, str]  # lower-case names
    etag: str  # exactly as received ("" if absent)
    last_modified: str


def check_scheme(url: str, what: str = "Feed URL") -> None:
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError as exc:
        raise FetchError(f"{what} {url!r} is not a valid URL: {exc}.") from None
    if scheme not in ALLOWED_SCHEMES:
        raise FetchError(f"{what} {url!r} uses the scheme {scheme or '(none)'!r}; only http and https are fetched.")


class PublicOnlyBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to checked public addresses.

    ``connect_tcp`` gets the host name from the URL; it resolves it once through
    ``addresses.resolver``, refuses the connection (``addresses.BlockedAddress``) if any
    answer is not public, and otherwise connects to those very addresses, in order.
    """

    def __init__(self, networks: tuple[addresses.Network, ...]) -> None:
        self.networks = networks  # the non-public networks allowed (FEEDS_ALLOW_PRIVATE_NETWORKS)
        self.inner = httpcore.AnyIOBackend()  # the one httpx uses on asyncio

    # httpcore's interface names these parameters.
    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # noqa: ASYNC109
        try:
            async with asyncio.timeout(timeout):
                ips = await addresses.resolve_checked(host, port, self.networks)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} took over {timeout:g} s") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"could not resolve {host}: {exc}") from None
        failure: Exception | None = None
        for ip in ips:
            try:
                return await self.inner.connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):  # noqa: ASYNC109
        raise addresses.BlockedAddress("Feeds are fetched over the network only, never from a Unix socket.")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def build_client(config: FeedSettings, ssl_context: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    """A client for one fetch at a time: concurrency comes from running several, one per worker.

    httpcore's pool does work quadratic in its size on every request, so one shared client
    with a large pool is many times slower than small clients. Pass one ``ssl_context`` to
    all of them: building a context (loading the CA bundle) is the expensive part.
    """
    ssl_context = ssl_context or httpx.create_ssl_context()
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    transport = httpx.AsyncHTTPTransport(verify=ssl_context, limits=limits, trust_env=False)
    # httpx has no public way to hand httpcore a network backend: its pool is rebuilt with
    # the same settings plus ours, so no connection can bypass the address check.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=PublicOnlyBackend(config.allowed_networks),
    )
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(
            connect=config.connect_timeout,
            read=config.read_timeout,
            write=config.read_timeout,
            pool=config.deadline,
        ),
        headers={"User-Agent": config.user_agent, "Accept": ACCEPT, "Accept-Encoding": "gzip, deflate"},
        follow_redirects=False,  # followed by hand: each hop's scheme is checked and 301/308 tracked
        trust_env=False,  # proxies and netrc from the environment do not apply to feed fetching
    )


def sendable(validator: str) -> bool:
    """Whether an ETag or Last-Modified can be sent back: a header's value is printable ASCII, and httpx
    refuses a whole request with any other (a server may send latin-1 or UTF-8 bytes in one)."""
    return bool(validator) and validator.isascii() and validator.isprintable()


async def fetch(
    client: httpx.AsyncClient, url: str, config: FeedSettings, *, etag: str = "", last_modified: str = ""
) -> FetchResult:
    """GET ``url`` conditionally, within the deadline, following at most ``max_redirects`` redirects.

    Raises FetchError (FeedGone for a 410, RetryLater for a 429/503 with Retry-After).
    """
    check_scheme(url)
    headers = {}
    # A validator stored before they were checked, or edited in the database, may not be sendable.
    if sendable(etag):
        headers["If-None-Match"] = etag
    if sendable(last_modified):
        headers["If-Modified-Since"] = last_modified
    try:
        async with asyncio.timeout(config.deadline):
            return await _follow(client, url, headers, config)
    except TimeoutError:
        raise FetchError(f"No complete response from {url} within the {config.deadline:g} s deadline.") from None
    except httpx.TimeoutException as exc:
        raise FetchError(f"Timed out fetching {url} ({type(exc).__name__}).") from None
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
        raise FetchError(f"Could not fetch {url}: {type(exc).__name__}: {exc or 'no details'}.") from None


async def _follow(client: httpx.AsyncClient, url: str, headers: dict[str, str], config: FeedSettings) -> FetchResult:
    moved_to = None
    permanent = True  # a temporary hop ends the chain that may update the stored URL
    came_from = None
    for _ in range(config.max_redirects + 1):
        try:
            # Literal addresses are refused here, before httpx reads them (it rejects some
            # spellings, such as "0177.0.0.1", with a less helpful error); names at connect time.
            addresses.check_literal_host(urlsplit(url).hostname or "", config.allowed_networks)
            async with client.stream("GET", url, headers=headers) as response:
                if response.has_redirect_location:
                    target = str(response.url.join(response.headers["location"]))
                    check_scheme(target, f"Redirect from {url} to")
                    permanent = permanent and response.status_code in PERMANENT_REDIRECTS
                    if permanent:
                        moved_to = target
                    came_from, url = url, target
                    continue
                status = response.status_code
                if status == 304:
                    return _result(response, url, moved_to, not_modified=True, content=b"")
                if status == 410:
                    raise FeedGone(f"{url} answered 410 Gone; the feed was deactivated.")
                reason = f" {response.reason_phrase}" if response.reason_phrase else ""
                if status in RETRY_LATER_STATUSES:
                    _raise_if_retry_later(url, status, reason, response.headers.get("retry-after", ""))
                if not 200 <= status < 300:
                    raise FetchError(f"{url} answered HTTP {status}{reason}.")
                content = await _read_capped(response, url, config.max_bytes)
                return _result(response, url, moved_to, not_modified=False, content=content)
        except addresses.BlockedAddress as exc:
            where = f"the redirect from {came_from} to {url}" if came_from else url
            raise FetchError(f"Refused to fetch {where}: {exc}") from None
    raise FetchError(f"Too many redirects: more than {config.max_redirects} from the feed URL, last to {url}.")


def _raise_if_retry_later(url: str, status: int, reason: str, value: str) -> None:
    """Raise RetryLater when ``value`` is a valid Retry-After (seconds or an HTTP date); else return."""
    value = value.strip()
    now = datetime.now(UTC)
    if value.isascii() and value.isdigit():  # "²" is a digit to str.isdigit, not to int()
        seconds = int(value) if len(value) <= 9 else MAX_RETRY_AFTER.total_seconds()
        wait = min(timedelta(seconds=seconds), MAX_RETRY_AFTER)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return  # absent or malformed: a plain failure
        if when.tzinfo is None:  # "-0000" dates are naive; HTTP dates are always UTC
            when = when.replace(tzinfo=UTC)
        wait = min(max(when - now, timedelta(0)), MAX_RETRY_AFTER)
    until = now + wait
    raise RetryLater(
        f"{url} answered HTTP {status}{reason} with Retry-After: {value}; "
        f"it is not fetched again before {until:%Y-%m-%d %H:%M:%S} UTC.",
        until,
    )


async def _read_capped(response: httpx.Response, url: str, max_bytes: int) -> bytearray:
    """Read the body, decompressed, refusing it as soon as it is known to exceed ``max_bytes`` decompressed.

    httpx's own decoding inflates a whole network chunk at once: 64 KB of gzip can be 64 MB. Here
    the raw bytes go through zlib with ``max_length``, so no more than the cap (plus one byte, to
    know it was passed) is ever inflated. One growing buffer rather than a list of chunks and a
    join: a body is held once, not twice. Raises FetchError.
    """
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"{url} sent {declared} bytes, over the FEEDS_MAX_BYTES limit of {max_bytes}; not read.")
    encoding = response.headers.get("content-encoding", "").strip().lower()
    decoder = _Decoder(encoding, url)
    over = f"{url} sent more than the FEEDS_MAX_BYTES limit of {max_bytes} bytes"
    if encoding not in IDENTITY:
        over += f" once decompressed ({encoding})"
    body = bytearray()
    async for chunk in response.aiter_raw():
        for piece in decoder.inflate(chunk, max_bytes - len(body) + 1):
            body += piece
            if len(body) > max_bytes:
                # Leaving the stream unread closes the connection: the rest is never downloaded.
                raise FetchError(f"{over}; stopped reading.")
    body += decoder.finish(max_bytes - len(body) + 1)
    if len(body) > max_bytes:
        raise FetchError(f"{over}; stopped reading.")
    return body


IDENTITY = ("", "identity")
INFLATE_PIECE = 256 * 1024  # bytes inflated at a time


class _Decoder:
    """Content-Encoding gzip, deflate or none, inflated at most ``room`` bytes at a time (zlib's ``max_length``)."""

    def __init__(self, encoding: str, url: str) -> None:
        self.encoding, self.url = encoding, url
        if encoding in ("gzip", "x-gzip"):
            self.zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self.zlib = zlib.decompressobj()  # zlib-wrapped, as the standard says; raw deflate is tried on error
        elif encoding in IDENTITY:
            self.zlib = None
        else:  # only gzip and deflate are asked for (Accept-Encoding)
            raise FetchError(f"{url} sent its body as Content-Encoding {encoding!r}, which was not asked for.")
        self.started = False

    def inflate(self, data: bytes, room: int) -> Iterator[bytes]:
        """The decompressed bytes of ``data``, in pieces of at most ``room`` bytes (the caller stops when over)."""
        if self.zlib is None:
            yield data
            return
        while data:
            try:
                # Small pieces: one of ``room`` bytes would be held twice (itself, and its copy in the body).
                piece = self.zlib.decompress(data, min(room, INFLATE_PIECE))
            except zlib.error as exc:
                if self.encoding == "deflate" and not self.started:  # some servers send raw deflate
                    self.zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                    self.started = True
                    continue
                raise FetchError(f"{self.url} sent a body that is not valid {self.encoding} data ({exc}).") from None
            self.started = True
            yield piece
            data = self.zlib.unconsumed_tail

    def finish(self, room: int) -> bytes:
        if self.zlib is None:
            return b""
        try:
            return self.zlib.flush(room)
        except zlib.error as exc:
            raise FetchError(f"{self.url} sent a body that is not valid {self.encoding} data ({exc}).") from None


def _result(response: httpx.Response, url: str, moved_to: str | None, *, not_modified: bool, content):
    return FetchResult(
        url=url,
        moved_to=moved_to,
        not_modified=not_modified,
        content=content,
        headers={name.lower(): value for name, value in response.headers.items()},
        etag=response.headers.get("etag", ""),
        last_modified=response.headers.get("last-modified", ""),
    )
