"""Every Redis client tasks_app opens is built here, from a queue's URL: one place for the URL forms.

Forms (a queue's ``SAQ["QUEUES"][name]["URL"]``):

- ``redis://[[user]:password@]host:port/db``, ``rediss://...`` (TLS: ``?ssl_ca_certs=&ssl_certfile=&ssl_keyfile=``),
  ``unix:///path?db=N``: redis-py's own ``from_url``.
- ``redis+sentinel://[[user]:password@]host:port[,host:port...]/<service_name>[/<db>][?sentinel_password=...]``:
  the sentinels at those addresses name the primary of ``service_name``; user and password are the primary's
  (``sentinel_username``/``sentinel_password`` the sentinels'). redis-py's ``SentinelConnectionPool`` asks the
  sentinels again whenever a connection to the primary fails or the primary answers READONLY (it became a
  replica), so a process follows a failover by itself. ``engine/pipelining.py``'s connection comes from the
  same pool (``make_connection``), so it follows too.

tasks_app's own query parameters (``concurrency``, ``wait_replicas``, ``wait_timeout``) are taken off by
``conf`` before a URL reaches this module. Nothing here prints a password: errors name the setting.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from redis.asyncio import Redis as AsyncRedis
from redis.asyncio import from_url as async_from_url
from redis.asyncio.retry import Retry as AsyncRetry
from redis.asyncio.sentinel import MasterNotFoundError, SentinelConnectionPool, SentinelManagedConnection
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.connection import URL_QUERY_ARGUMENT_PARSERS
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger("tasks_app.redis")

SENTINEL_SCHEME = "redis+sentinel"
SCHEMES = ("redis", "rediss", "unix", SENTINEL_SCHEME)
SENTINEL_EXAMPLE = "redis+sentinel://:password@10.0.0.1:26379,10.0.0.2:26379/mymaster/0?sentinel_password=..."
# Query parameters naming files that must exist (redis-py would fail only at the first connect, deep inside).
TLS_FILES = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_ca_path")
SENTINEL_ONLY = ("sentinel_username", "sentinel_password")


@dataclass(frozen=True)
class SentinelURL:
    """A parsed ``redis+sentinel://`` URL: sentinel addresses, the service, and the primary's options."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # redis-py connection options (socket_timeout, ...)


def scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def is_sentinel(url: str) -> bool:
    return scheme(url) == SENTINEL_SCHEME


def parse_sentinel(url: str) -> SentinelURL:
    """Parse a ``redis+sentinel://`` URL. Raises ``ValueError`` saying what is wrong, never quoting a password."""
    if not is_sentinel(url):
        raise ValueError(f"a Sentinel URL starts with {SENTINEL_SCHEME}://")
    rest = url.split("://", 1)[1]
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, _, hosts = netloc.rpartition("@")
    username = password = None
    if userinfo:
        user, has_password, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if has_password else None
    sentinels = tuple(_address(part) for part in hosts.split(","))
    parts = [unquote(p) for p in path.split("/") if p]
    if not parts:
        raise ValueError("it names no service: give it after the addresses, as in .../mymaster/0")
    if len(parts) > 2:
        raise ValueError(f"its path has {len(parts)} parts; it is /<service_name>/<db>")
    db = 0
    if len(parts) == 2:
        if not parts[1].isdigit():
            raise ValueError(f"its database {parts[1]!r} is not a whole number (the path is /<service_name>/<db>)")
        db = int(parts[1])
    extra: dict[str, Any] = {}
    options: dict[str, Any] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in SENTINEL_ONLY:
            extra[name] = unquote(value)
        elif name in URL_QUERY_ARGUMENT_PARSERS:
            try:
                options[name] = URL_QUERY_ARGUMENT_PARSERS[name](value)
            except (TypeError, ValueError):
                raise ValueError(f"its parameter {name}={value!r} is not valid") from None
        else:
            known = ", ".join((*SENTINEL_ONLY, *URL_QUERY_ARGUMENT_PARSERS))
            raise ValueError(f"its parameter {name!r} is not one tasks_app knows for Sentinel (known: {known})")
    return SentinelURL(sentinels, parts[0], db, username, password, options=options, **extra)


def _address(part: str) -> tuple[str, int]:
    host, sep, port = part.strip().rpartition(":")
    host = host.strip("[]")  # [::1]:26379
    if not sep or not host:
        raise ValueError(f"sentinel address {part!r} must be host:port, e.g. 10.0.0.1:26379")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"sentinel address {part!r} has no valid port (1-65535)")
    return host, int(port)


# The query parameters a redis://, rediss:// or unix:// queue URL may give: what redis-py's clients (sync and
# asyncio) take from a URL and can use. Any other makes every connection fail later, with a TypeError deep
# inside redis-py; left out too: ``timeout`` (a blocking pool's only), ``retry_on_error`` (read as a list of
# characters), ``ssl_min_version`` (wants a TLSVersion), and ``decode_responses`` (the engine reads bytes).
URL_PARAMETERS = (
    "db", "username", "password", "client_name", "lib_name", "lib_version", "protocol", "socket_timeout",
    "socket_connect_timeout", "retry_on_timeout", "health_check_interval", "max_connections", "encoding",
    "encoding_errors",
)  # fmt: skip
TCP_PARAMETERS = ("socket_keepalive",)
TLS_PARAMETERS = (
    "ssl_keyfile", "ssl_certfile", "ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_path", "ssl_ca_data", "ssl_check_hostname",
    "ssl_ciphers", "ssl_password", "ssl_include_verify_flags", "ssl_exclude_verify_flags",
)  # fmt: skip
NOT_FROM_A_URL = {
    "timeout": "a blocking pool's, not a client's",
    "retry_on_error": "redis-py reads it as a list of characters",
    "ssl_min_version": "redis-py wants a TLSVersion there, not text",
    "decode_responses": "tasks_app reads Redis's replies as bytes",
}


def url_parameters(scheme: str) -> frozenset[str]:
    """The query parameters a ``scheme`` (``redis``, ``rediss`` or ``unix``) URL may give."""
    extra = {"redis": TCP_PARAMETERS, "rediss": TCP_PARAMETERS + TLS_PARAMETERS}.get(scheme, ())
    return frozenset(URL_PARAMETERS + extra)


def problem(url: str) -> str | None:
    """What is wrong with ``url`` that can be told without connecting (a malformed Sentinel URL, a TLS file
    that does not exist), as a clause without a password; None when nothing is."""
    if is_sentinel(url):
        try:
            parse_sentinel(url)
        except ValueError as exc:
            return f"is not a valid Sentinel URL: {exc}. Form: {SENTINEL_EXAMPLE}"
    for name, value in parse_qsl(url.partition("?")[2], keep_blank_values=True):
        if name in TLS_FILES and not os.path.exists(value):
            return f"names {name}={value!r}, which does not exist (or this process may not read it)"
    return None


# --- clients --------------------------------------------------------------------------------------


def client(url: str, **options: Any) -> AsyncRedis:
    """A ``redis.asyncio`` client for ``url`` (any form above); ``options`` are redis-py connection options
    (``socket_timeout``...) and win over the URL's. Raises ``ValueError`` for a malformed Sentinel URL."""
    if not is_sentinel(url):
        return async_from_url(url, **options)
    parsed = parse_sentinel(url)
    kwargs = {**_sentinel_kwargs(parsed, options), "retry": AsyncRetry(NoBackoff(), 0)}
    sentinel = Sentinels(list(parsed.sentinels), sentinel_kwargs=kwargs)
    # A connection the old primary closed (a failover) is retried on the new one, found anew each time:
    # briefly, as redis-py's plain clients retry, so that a caller does not hear of a failover already over.
    retry = AsyncRetry(ExponentialWithJitterBackoff(base=0.1, cap=1), 3)
    primary = {"retry": retry, **_primary_kwargs(parsed, options)}
    return sentinel.master_for(parsed.service, connection_pool_class=WatchedPool, **primary)


def sync_client(url: str, **options: Any):
    """A blocking ``redis.Redis`` for ``url``, the same forms as ``client`` (for code outside an event loop)."""
    import redis
    from redis.retry import Retry
    from redis.sentinel import Sentinel

    if not is_sentinel(url):
        return redis.Redis.from_url(url, **options)
    parsed = parse_sentinel(url)
    kwargs = {**_sentinel_kwargs(parsed, options), "retry": Retry(NoBackoff(), 0)}
    sentinel = Sentinel(list(parsed.sentinels), sentinel_kwargs=kwargs)
    return sentinel.master_for(parsed.service, **_primary_kwargs(parsed, options))


def _sentinel_kwargs(parsed: SentinelURL, options: dict[str, Any]) -> dict[str, Any]:
    # Sentinels get the same socket bounds as the primary, and no retries with back-off (redis-py's
    # default, seconds per dead sentinel): the next sentinel is the retry, and callers retry the lot.
    kwargs = {k: v for k, v in {**parsed.options, **options}.items() if k.startswith("socket_")}
    kwargs.setdefault("socket_connect_timeout", 2)
    kwargs.setdefault("socket_timeout", 2)
    if parsed.sentinel_password is not None:
        kwargs.update(username=parsed.sentinel_username, password=parsed.sentinel_password)
    return kwargs


def _primary_kwargs(parsed: SentinelURL, options: dict[str, Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"db": parsed.db, **parsed.options, **options}
    if parsed.username is not None:
        kwargs["username"] = parsed.username
    if parsed.password is not None:
        kwargs["password"] = parsed.password
    return kwargs


# --- following the primary ------------------------------------------------------------------------


class Sentinels(AsyncSentinel):
    """redis-py's ``Sentinel``, whose "no primary" error says in one line whether any sentinel answered
    (redis-py's lists each sentinel client's repr)."""

    async def discover_master(self, service_name: str) -> tuple[str, int]:
        unanswered: list[str] = []
        for index, sentinel in enumerate(self.sentinels):
            try:
                masters = await sentinel.sentinel_masters()
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                unanswered.append(_clause(exc))
                continue
            state = masters.get(service_name)
            if state and self.check_master_state(state, service_name):
                self.sentinels[0], self.sentinels[index] = sentinel, self.sentinels[0]  # ask it first next time
                return state["ip"], int(state["port"])
        addresses = ", ".join(_show(address_of(s)) for s in self.sentinels)
        if len(unanswered) == len(self.sentinels):
            raise MasterNotFoundError(f"no sentinel answers at {addresses} ({unanswered[0]})")
        raise MasterNotFoundError(
            f"the sentinels at {addresses} name no healthy primary of service {service_name!r} "
            "(an unknown service name, or a failover under way)"
        )


def address_of(sentinel: AsyncRedis) -> tuple[str, int]:
    kwargs = sentinel.connection_pool.connection_kwargs
    return str(kwargs.get("host")), int(kwargs.get("port", 0))


class PrimaryWatch:
    """One process's view of a Sentinel service's primary: logs one line when it is lost and one when a
    primary is reached again (naming its host:port), however many connections notice."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.address: tuple[str, int] | None = None  # the primary last reached
        self.lost_since: float | None = None  # monotonic seconds

    def lost(self, exc: BaseException) -> None:
        if self.lost_since is not None or self.address is None:
            return  # said already; or never reached, which the caller reports (no primary was lost)
        self.lost_since = time.monotonic()
        where = f" {_show(self.address)}" if self.address else ""
        logger.error(
            "Lost the Redis primary%s of Sentinel service %r (%s); waiting for the sentinels to name one.",
            where,
            self.service,
            _clause(exc),
            extra={"event": "primary_lost", "service": self.service},
        )

    def reached(self, address: tuple[str, int]) -> None:
        was, since = self.address, self.lost_since
        self.address, self.lost_since = address, None
        if since is None and (was is None or was == address):
            return  # the first connection, or one more to the same primary
        moved = f", which replaced {_show(was)}" if was and was != address else ""
        after = f" after {time.monotonic() - since:.1f}s" if since is not None else ""
        logger.warning(
            "Reached the Redis primary %s of Sentinel service %r%s%s.",
            _show(address),
            self.service,
            after,
            moved,
            extra={"event": "primary_back", "service": self.service, "primary": _show(address)},
        )


_watches: dict[tuple[Any, ...], PrimaryWatch] = {}


def watch_for(service: str, sentinels: Any) -> PrimaryWatch:
    """The process's one watch of ``service`` as seen through ``sentinels`` (every client of it shares it)."""
    key = (service, tuple(sorted(map(str, sentinels))))
    if key not in _watches:
        _watches[key] = PrimaryWatch(service)
    return _watches[key]


class WatchedConnection(SentinelManagedConnection):
    """redis-py's Sentinel connection, reporting each connect to the process's ``PrimaryWatch``. (Only
    connects: a connection can also break under a command for reasons of its own, e.g. one closed while a
    blocking read was cancelled, and the next connect, to the same primary, would read as an outage.)"""

    async def _connect_retry(self) -> None:
        connected = self._reader is not None
        try:
            await super()._connect_retry()
        except Exception as exc:
            self.connection_pool.watch.lost(exc)
            raise
        if not connected:
            self.connection_pool.watch.reached((str(self.host), int(self.port)))


class WatchedPool(SentinelConnectionPool):
    # Its watch logs the outage and the return, so a worker does not log its own pair as well.
    reports_outages = True

    def __init__(self, service_name: str, sentinel_manager: AsyncSentinel, **kwargs: Any) -> None:
        kwargs.setdefault("connection_class", WatchedConnection)
        super().__init__(service_name, sentinel_manager, **kwargs)
        self.watch = watch_for(service_name, [address_of(s) for s in sentinel_manager.sentinels])


def _show(address: tuple[str, int] | None) -> str:
    if address is None:
        return "unknown"
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _clause(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.rstrip(".")


# --- which primary ---------------------------------------------------------------------------------


async def primary_of(redis: AsyncRedis) -> tuple[str, bool]:
    """``(host:port, through Sentinel)`` of the server ``redis`` writes to now: for a Sentinel client the
    primary the sentinels name (asked now), else the URL's own address (or socket path).
    Raises redis-py's ``ConnectionError`` (``MasterNotFoundError``) when no sentinel names one."""
    pool = redis.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        return _show(await pool.sentinel_manager.discover_master(pool.service_name)), True
    kwargs = pool.connection_kwargs
    if kwargs.get("path"):
        return str(kwargs["path"]), False
    return _show((str(kwargs.get("host", "localhost")), int(kwargs.get("port", 6379)))), False
