"""Fetching one feed politely and safely with httpx.

Every way a fetch can go wrong ends in a ``FetchError`` whose message is what
the admin sees in the feed's ``last_error``: it names the problem and the URL.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from .conf import FeedSettings

ALLOWED_SCHEMES = ("http", "https")
PERMANENT_REDIRECTS = (301, 308)
ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1"
)


class FetchError(Exception):
    """The fetch produced nothing usable; the message is recorded on the feed."""


class FeedGone(FetchError):
    """The server answered 410 Gone: the feed should be deactivated."""


@dataclass(frozen=True)
class FetchResult:
    url: str  # the URL that finally answered
    moved_to: str | None  # the new address if every redirect on the way was permanent (301/308)
    not_modified: bool
    content: bytes
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


def build_client(config: FeedSettings, ssl_context: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    """A client for one fetch at a time: concurrency comes from running several, one per worker.

    httpcore's pool does work quadratic in its size on every request, so one shared client
    with a large pool is many times slower than small clients. Pass one ``ssl_context`` to
    all of them: building a context (loading the CA bundle) is the expensive part.
    """
    return httpx.AsyncClient(
        timeout=httpx.Timeout(
            connect=config.connect_timeout,
            read=config.read_timeout,
            write=config.read_timeout,
            pool=config.deadline,
        ),
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        headers={"User-Agent": config.user_agent, "Accept": ACCEPT, "Accept-Encoding": "gzip, deflate"},
        verify=ssl_context or httpx.create_ssl_context(),
        follow_redirects=False,  # followed by hand: each hop's scheme is checked and 301/308 tracked
        trust_env=False,  # proxies and netrc from the environment do not apply to feed fetching
    )


async def fetch(
    client: httpx.AsyncClient, url: str, config: FeedSettings, *, etag: str = "", last_modified: str = ""
) -> FetchResult:
    """GET ``url`` conditionally, within the deadline, following at most ``max_redirects`` redirects."""
    check_scheme(url)
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
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
    for _ in range(config.max_redirects + 1):
        async with client.stream("GET", url, headers=headers) as response:
            if response.has_redirect_location:
                target = str(response.url.join(response.headers["location"]))
                check_scheme(target, f"Redirect from {url} to")
                permanent = permanent and response.status_code in PERMANENT_REDIRECTS
                if permanent:
                    moved_to = target
                url = target
                continue
            status = response.status_code
            if status == 304:
                return _result(response, url, moved_to, not_modified=True, content=b"")
            if status == 410:
                raise FeedGone(f"{url} answered 410 Gone; the feed was deactivated.")
            if not 200 <= status < 300:
                reason = f" {response.reason_phrase}" if response.reason_phrase else ""
                raise FetchError(f"{url} answered HTTP {status}{reason}.")
            content = await _read_capped(response, url, config.max_bytes)
            return _result(response, url, moved_to, not_modified=False, content=content)
    raise FetchError(f"Too many redirects: more than {config.max_redirects} from the feed URL, last to {url}.")


async def _read_capped(response: httpx.Response, url: str, max_bytes: int) -> bytes:
    """Read the (decoded) body, refusing it as soon as it is known to exceed ``max_bytes``."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"{url} sent {declared} bytes, over the FEEDS_MAX_BYTES limit of {max_bytes}; not read.")
    chunks = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            # Leaving the stream unread closes the connection: the rest is never downloaded.
            raise FetchError(f"{url} sent more than the FEEDS_MAX_BYTES limit of {max_bytes} bytes; stopped reading.")
        chunks.append(chunk)
    return b"".join(chunks)


def _result(response: httpx.Response, url: str, moved_to: str | None, *, not_modified: bool, content: bytes):
    return FetchResult(
        url=url,
        moved_to=moved_to,
        not_modified=not_modified,
        content=content,
        headers={name.lower(): value for name, value in response.headers.items()},
        etag=response.headers.get("etag", ""),
        last_modified=response.headers.get("last-modified", ""),
    )
