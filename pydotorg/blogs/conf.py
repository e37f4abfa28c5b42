"""The feed settings, with their defaults, read in one place.

The blogs app works without any of them in settings.py; a bad value is an
ImproperlyConfigured error that names the setting.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS: dict[str, int | float | str] = {
    "FEEDS_USER_AGENT": "python.org feed aggregator (+https://www.python.org/blogs/)",
    "FEEDS_MAX_CONCURRENCY": 20,  # simultaneous fetches in refresh_all_feeds
    "FEEDS_CONNECT_TIMEOUT": 10,  # seconds to open a connection
    "FEEDS_READ_TIMEOUT": 30,  # seconds of silence allowed while reading
    "FEEDS_DEADLINE": 60,  # seconds for a whole fetch, redirects and body included
    "FEEDS_MAX_BYTES": 10 * 1024 * 1024,  # decoded body size cap
    "FEEDS_MAX_REDIRECTS": 5,
}


@dataclass(frozen=True)
class FeedSettings:
    user_agent: str
    max_concurrency: int
    connect_timeout: float
    read_timeout: float
    deadline: float
    max_bytes: int
    max_redirects: int


def _number(name: str, kind: type, minimum: float) -> int | float:
    value = getattr(settings, name, DEFAULTS[name])
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ImproperlyConfigured(
            f"{name}={value!r} must be a number >= {minimum} (default {DEFAULTS[name]!r}); fix it in settings.py."
        )
    if kind is int and not isinstance(value, int):
        raise ImproperlyConfigured(f"{name}={value!r} must be a whole number (default {DEFAULTS[name]!r}).")
    return value


def feed_settings() -> FeedSettings:
    """The current feed settings, validated (read at each refresh so tests can override them)."""
    user_agent = getattr(settings, "FEEDS_USER_AGENT", DEFAULTS["FEEDS_USER_AGENT"])
    if not isinstance(user_agent, str) or not user_agent.strip():
        raise ImproperlyConfigured(
            f"FEEDS_USER_AGENT={user_agent!r} must name the site, e.g. {DEFAULTS['FEEDS_USER_AGENT']!r}."
        )
    return FeedSettings(
        user_agent=user_agent.strip(),
        max_concurrency=int(_number("FEEDS_MAX_CONCURRENCY", int, 1)),
        connect_timeout=float(_number("FEEDS_CONNECT_TIMEOUT", float, 0.001)),
        read_timeout=float(_number("FEEDS_READ_TIMEOUT", float, 0.001)),
        deadline=float(_number("FEEDS_DEADLINE", float, 0.001)),
        max_bytes=int(_number("FEEDS_MAX_BYTES", int, 1)),
        max_redirects=int(_number("FEEDS_MAX_REDIRECTS", int, 0)),
    )
