"""The feed settings, with their defaults, read in one place.

The blogs app works without any of them in settings.py; a bad value is an
ImproperlyConfigured error that names the setting (and a system check, blogs.E001).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS: dict[str, int | float | str | bool] = {
    "FEEDS_USER_AGENT": "python.org feed aggregator (+https://www.python.org/blogs/)",
    "FEEDS_MAX_CONCURRENCY": 20,  # simultaneous fetches in refresh_all_feeds
    "FEEDS_MAX_PER_HOST": 2,  # simultaneous fetches from one host
    "FEEDS_CONNECT_TIMEOUT": 10,  # seconds to open a connection
    "FEEDS_READ_TIMEOUT": 30,  # seconds of silence allowed while reading
    "FEEDS_DEADLINE": 60,  # seconds for a whole fetch, redirects and body included
    "FEEDS_MAX_BYTES": 10 * 1024 * 1024,  # decoded body size cap
    "FEEDS_MAX_REDIRECTS": 5,
    # False: public addresses only. True (tests, local development): any address. A list of
    # networks ("10.1.2.0/24"): public addresses and those.
    "FEEDS_ALLOW_PRIVATE_NETWORKS": False,
    "FEEDS_MAX_ENTRIES": 100,  # the newest entries kept from one document
    "FEEDS_MAX_CONTENT_CHARS": 65536,  # characters kept of an entry's summary, and of its content
    "FEEDS_STORE_CONNECTIONS": 4,  # database connections refresh_all_feeds stores with at once
    "FEEDS_PARSE_PROCESSES": 0,  # parse processes per worker; 0 means one per CPU
    "FEEDS_PARSE_CPU_SECONDS": 10,  # CPU time one parse may use
    "FEEDS_PARSE_MEMORY_MB": 512,  # address space of a parse process
    "FEEDS_PARSE_TIMEOUT": 30,  # wall-clock seconds one parse may take, waiting for a CPU included
}
# Below this a parse process cannot even start Python, feedparser and nh3.
MIN_PARSE_MEMORY_MB = 128
# The least each number may be. Seconds may be fractions in settings.py; the environment gives
# whole numbers (pydotorg/settings.py reads these bounds, rounded up, and the defaults above).
MINIMUMS: dict[str, int | float] = {
    "FEEDS_MAX_CONCURRENCY": 1,
    "FEEDS_MAX_PER_HOST": 1,
    "FEEDS_CONNECT_TIMEOUT": 0.001,
    "FEEDS_READ_TIMEOUT": 0.001,
    "FEEDS_DEADLINE": 0.001,
    "FEEDS_MAX_BYTES": 1,
    "FEEDS_MAX_REDIRECTS": 0,
    "FEEDS_MAX_ENTRIES": 1,
    "FEEDS_MAX_CONTENT_CHARS": 1000,  # room for the markup that keeps a cut entry well-formed
    "FEEDS_STORE_CONNECTIONS": 1,
    "FEEDS_PARSE_PROCESSES": 0,  # 0: one per CPU
    "FEEDS_PARSE_CPU_SECONDS": 1,  # RLIMIT_CPU counts whole seconds
    "FEEDS_PARSE_MEMORY_MB": MIN_PARSE_MEMORY_MB,
    "FEEDS_PARSE_TIMEOUT": 0.001,
}
EVERY_NETWORK = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class FeedSettings:
    user_agent: str
    max_concurrency: int
    max_per_host: int
    connect_timeout: float
    read_timeout: float
    deadline: float
    max_bytes: int
    max_redirects: int
    allowed_networks: tuple[Network, ...]  # non-public networks feeds may be fetched from; () in production
    max_entries: int
    max_content_chars: int
    store_connections: int
    parse_processes: int  # resolved: never 0
    parse_cpu_seconds: int
    parse_memory_mb: int
    parse_timeout: float


def _number(name: str, kind: type) -> int | float:
    value = getattr(settings, name, DEFAULTS[name])
    minimum = MINIMUMS[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ImproperlyConfigured(
            f"{name}={value!r} must be a number >= {minimum} (default {DEFAULTS[name]!r}); fix it in settings.py."
        )
    if kind is int and not isinstance(value, int):
        raise ImproperlyConfigured(f"{name}={value!r} must be a whole number (default {DEFAULTS[name]!r}).")
    return value


def _networks(name: str) -> tuple[Network, ...]:
    value = getattr(settings, name, DEFAULTS[name])
    if value is True:
        return EVERY_NETWORK
    if value is False:
        return ()
    problem = f"{name}={value!r} must be False (the default), True or a list of networks such as ['10.1.2.0/24']"
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ImproperlyConfigured(f"{problem}.")
    try:
        return tuple(ipaddress.ip_network(network, strict=False) for network in value)
    except (TypeError, ValueError) as exc:
        raise ImproperlyConfigured(f"{problem}: {exc}.") from None


def cpu_count() -> int:
    """CPUs this process may run on (its affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def feed_settings() -> FeedSettings:
    """The current feed settings, validated (read at each refresh so tests can override them)."""
    user_agent = getattr(settings, "FEEDS_USER_AGENT", DEFAULTS["FEEDS_USER_AGENT"])
    if not isinstance(user_agent, str) or not user_agent.strip():
        raise ImproperlyConfigured(
            f"FEEDS_USER_AGENT={user_agent!r} must name the site, e.g. {DEFAULTS['FEEDS_USER_AGENT']!r}."
        )
    return FeedSettings(
        user_agent=user_agent.strip(),
        max_concurrency=int(_number("FEEDS_MAX_CONCURRENCY", int)),
        max_per_host=int(_number("FEEDS_MAX_PER_HOST", int)),
        connect_timeout=float(_number("FEEDS_CONNECT_TIMEOUT", float)),
        read_timeout=float(_number("FEEDS_READ_TIMEOUT", float)),
        deadline=float(_number("FEEDS_DEADLINE", float)),
        max_bytes=int(_number("FEEDS_MAX_BYTES", int)),
        max_redirects=int(_number("FEEDS_MAX_REDIRECTS", int)),
        allowed_networks=_networks("FEEDS_ALLOW_PRIVATE_NETWORKS"),
        max_entries=int(_number("FEEDS_MAX_ENTRIES", int)),
        max_content_chars=int(_number("FEEDS_MAX_CONTENT_CHARS", int)),
        store_connections=int(_number("FEEDS_STORE_CONNECTIONS", int)),
        parse_processes=int(_number("FEEDS_PARSE_PROCESSES", int)) or cpu_count(),
        parse_cpu_seconds=int(_number("FEEDS_PARSE_CPU_SECONDS", int)),
        parse_memory_mb=int(_number("FEEDS_PARSE_MEMORY_MB", int)),
        parse_timeout=float(_number("FEEDS_PARSE_TIMEOUT", float)),
    )


MB = 1024 * 1024
# What a worker's refreshes need besides the documents themselves: TLS contexts, httpx's and
# the pickles' buffers, the allocator's slack. Measured with bench/feeds.py (README "Memory").
WORKER_MEMORY_OVERHEAD = 64 * MB


def worker_memory_bound(config: FeedSettings, feeds_at_once: int | None = None) -> int:
    """Bytes a worker's feed refreshes may add to its RSS (the parse processes are limited apart).

    Each feed in progress holds its body or its parsed entries, at most FEEDS_MAX_BYTES either
    way; the document of each parse process is in flight a second time, as a pickle.
    """
    feeds = config.max_concurrency if feeds_at_once is None else min(feeds_at_once, config.max_concurrency)
    return (feeds + 2 * config.parse_processes) * config.max_bytes + WORKER_MEMORY_OVERHEAD
