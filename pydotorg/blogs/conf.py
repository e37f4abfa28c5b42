"""The feed settings, with their defaults, read in one place: ``settings.FEEDS``, a dict.

The blogs app works without it in settings.py. The site fills it from the ``FEEDS_*``
environment variables (``FEEDS_MAX_BYTES`` sets ``FEEDS["MAX_BYTES"]``), so errors name both
spellings. A bad value is an ImproperlyConfigured error that names it (and a system check,
blogs.E001); an unknown key is one too, with the nearest known key.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS: dict[str, int | float | str | bool] = {
    "USER_AGENT": "python.org feed aggregator (+https://www.python.org/blogs/)",
    "MAX_CONCURRENCY": 20,  # simultaneous fetches in refresh_all_feeds
    "MAX_PER_HOST": 2,  # simultaneous fetches from one host
    "CONNECT_TIMEOUT": 10,  # seconds to open a connection
    "READ_TIMEOUT": 30,  # seconds of silence allowed while reading
    "DEADLINE": 60,  # seconds for a whole fetch, redirects and body included
    "MAX_BYTES": 10 * 1024 * 1024,  # decoded body size cap
    "MAX_REDIRECTS": 5,
    # False: public addresses only. True (tests, local development): any address. A list of
    # networks ("10.1.2.0/24"): public addresses and those.
    "ALLOW_PRIVATE_NETWORKS": False,
    "MAX_ENTRIES": 100,  # the newest entries kept from one document
    "MAX_CONTENT_CHARS": 65536,  # characters kept of an entry's summary, and of its content
    "STORE_CONNECTIONS": 4,  # database connections refresh_all_feeds stores with at once
    "PARSE_PROCESSES": 0,  # parse processes per worker; 0 means one per CPU
    "PARSE_CPU_SECONDS": 10,  # CPU time one parse may use
    "PARSE_MEMORY_MB": 512,  # address space of a parse process
    "PARSE_TIMEOUT": 30,  # wall-clock seconds one parse may take, waiting for a CPU included
}
# Below this a parse process cannot even start Python, feedparser and nh3.
MIN_PARSE_MEMORY_MB = 128
# The least each number may be. Seconds may be fractions in settings.py; the environment gives
# whole numbers.
MINIMUMS: dict[str, int | float] = {
    "MAX_CONCURRENCY": 1,
    "MAX_PER_HOST": 1,
    "CONNECT_TIMEOUT": 0.001,
    "READ_TIMEOUT": 0.001,
    "DEADLINE": 0.001,
    "MAX_BYTES": 1,
    "MAX_REDIRECTS": 0,
    "MAX_ENTRIES": 1,
    "MAX_CONTENT_CHARS": 1000,  # room for the markup that keeps a cut entry well-formed
    "STORE_CONNECTIONS": 1,
    "PARSE_PROCESSES": 0,  # 0: one per CPU
    "PARSE_CPU_SECONDS": 1,  # RLIMIT_CPU counts whole seconds
    "PARSE_MEMORY_MB": MIN_PARSE_MEMORY_MB,
    "PARSE_TIMEOUT": 0.001,
}
# The pool starts every parse process up front, at each refresh: 100000 of them is a fork bomb.
# Parsing is CPU-bound, so past one per CPU more processes only queue for the same CPUs; 4 per
# CPU (as runworker --workers) leaves room for parses that wait on memory, and no more.
PARSE_PROCESSES_PER_CPU = 4


# refresh_all_feeds itself is stopped after an hour (tasks.py): no fetch or parse may take longer.
_TASK_HOUR = (3600, "refresh_all_feeds stops after 3600 s")
# The most each other number may be, with why. Past these, a value either cannot work (setrlimit
# and float() overflow: every refresh failed) or holds a whole worker's memory or the database.
MAXIMUMS: dict[str, tuple[int | float, str]] = {
    "MAX_CONCURRENCY": (1000, "each feed in progress holds a connection and up to FEEDS_MAX_BYTES"),
    "MAX_PER_HOST": (50, "more is not polite to one server"),
    "CONNECT_TIMEOUT": _TASK_HOUR,
    "READ_TIMEOUT": _TASK_HOUR,
    "DEADLINE": _TASK_HOUR,
    "MAX_BYTES": (1024 * 1024 * 1024, "1 GiB: each feed in progress holds this much"),
    "MAX_REDIRECTS": (20, "browsers and httpx stop at 20"),
    "MAX_ENTRIES": (10000, "each entry kept is a row written at each refresh"),
    "MAX_CONTENT_CHARS": (10 * 1024 * 1024, "a whole default-size document"),
    "STORE_CONNECTIONS": (32, "each is a database connection of each worker"),
    "PARSE_CPU_SECONDS": _TASK_HOUR,
    "PARSE_MEMORY_MB": (65536, "64 GB of address space"),
    "PARSE_TIMEOUT": _TASK_HOUR,
}


def maximums() -> dict[str, tuple[int | float, str]]:
    """The most each number may be, with why, on this host (the CPUs this process may run on)."""
    return {
        **MAXIMUMS,
        "PARSE_PROCESSES": (
            PARSE_PROCESSES_PER_CPU * cpu_count(),
            f"{PARSE_PROCESSES_PER_CPU} per CPU here: more only wait for the same CPUs",
        ),
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


def _where(key: str) -> str:
    return f'set FEEDS_{key} in the environment, or FEEDS["{key}"] in settings.py'


def given() -> dict[str, object]:
    """``settings.FEEDS`` as set (without defaults); raises ImproperlyConfigured for an unknown key."""
    values = getattr(settings, "FEEDS", None)
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ImproperlyConfigured(
            f"FEEDS={values!r} must be a dict such as {{'MAX_BYTES': 10485760}}; its keys are {', '.join(DEFAULTS)}."
        )
    for key in values:
        if key not in DEFAULTS:
            near = difflib.get_close_matches(str(key), DEFAULTS, n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise ImproperlyConfigured(f"FEEDS has an unknown key {key!r}; {hint}the keys are {', '.join(DEFAULTS)}.")
    return values


def _number(values: dict[str, object], key: str, kind: type) -> int | float:
    value = values.get(key, DEFAULTS[key])
    minimum = MINIMUMS[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ImproperlyConfigured(
            f"FEEDS_{key}={value!r} must be a number >= {minimum} (default {DEFAULTS[key]!r}); {_where(key)}."
        )
    maximum, why = maximums()[key]
    if not value <= maximum:  # not: NaN, set in settings.py, is no number either
        raise ImproperlyConfigured(
            f"FEEDS_{key}={value!r} must be a number <= {maximum} ({why}; default {DEFAULTS[key]!r}); {_where(key)}."
        )
    if kind is int and not isinstance(value, int):
        raise ImproperlyConfigured(
            f"FEEDS_{key}={value!r} must be a whole number (default {DEFAULTS[key]!r}); {_where(key)}."
        )
    return value


def _networks(values: dict[str, object], key: str) -> tuple[Network, ...]:
    value = values.get(key, DEFAULTS[key])
    if value is True:
        return EVERY_NETWORK
    if value is False:
        return ()
    problem = (
        f"FEEDS_{key}={value!r} must be False (the default), True or a list of networks such as "
        f"['10.1.2.0/24'] ({_where(key)})"
    )
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
    values = given()
    user_agent = values.get("USER_AGENT", DEFAULTS["USER_AGENT"])
    if not isinstance(user_agent, str) or not user_agent.strip():
        raise ImproperlyConfigured(
            f"FEEDS_USER_AGENT={user_agent!r} must name the site, e.g. {DEFAULTS['USER_AGENT']!r}; "
            f"{_where('USER_AGENT')}."
        )
    return FeedSettings(
        user_agent=user_agent.strip(),
        max_concurrency=int(_number(values, "MAX_CONCURRENCY", int)),
        max_per_host=int(_number(values, "MAX_PER_HOST", int)),
        connect_timeout=float(_number(values, "CONNECT_TIMEOUT", float)),
        read_timeout=float(_number(values, "READ_TIMEOUT", float)),
        deadline=float(_number(values, "DEADLINE", float)),
        max_bytes=int(_number(values, "MAX_BYTES", int)),
        max_redirects=int(_number(values, "MAX_REDIRECTS", int)),
        allowed_networks=_networks(values, "ALLOW_PRIVATE_NETWORKS"),
        max_entries=int(_number(values, "MAX_ENTRIES", int)),
        max_content_chars=int(_number(values, "MAX_CONTENT_CHARS", int)),
        store_connections=int(_number(values, "STORE_CONNECTIONS", int)),
        parse_processes=int(_number(values, "PARSE_PROCESSES", int)) or cpu_count(),
        parse_cpu_seconds=int(_number(values, "PARSE_CPU_SECONDS", int)),
        parse_memory_mb=int(_number(values, "PARSE_MEMORY_MB", int)),
        parse_timeout=float(_number(values, "PARSE_TIMEOUT", float)),
    )


def flat_settings() -> list[str]:
    """Names of flat ``FEEDS_*`` settings left in settings.py: no longer read (FEEDS is)."""
    return sorted(name for name in dir(settings) if name.startswith("FEEDS_"))


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
