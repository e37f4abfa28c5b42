"""A queue URL's own parameters: ``?concurrency=N``, ``wait_replicas=N`` and ``wait_timeout=ms`` split off
before redis-py sees the URL, and every other parameter checked against what redis-py takes, so that a
typo fails at start in one line rather than deep inside redis-py at the first connection.

``split_url_options(url, setting)`` raises ``ImproperlyConfigured`` naming ``setting``.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from django.core.exceptions import ImproperlyConfigured

from .exceptions import did_you_mean
from .redaction import spilled_password

# Each slot waits for jobs on a Redis connection of its own: 10,000 slots reach Redis's default maxclients
# (and a process's open-file limit), and a worker past it can neither connect nor stop.
MAX_CONCURRENCY = 1000


def too_concurrent(what: str, value: int) -> str | None:
    """The error for a concurrency past ``MAX_CONCURRENCY`` (``what`` names where it was given), or None."""
    if value <= MAX_CONCURRENCY:
        return None
    return (
        f"{what} must be at most {MAX_CONCURRENCY} (each slot holds a Redis connection): for more, run more "
        "worker processes with --workers N."
    )


# tasks_app's own query parameters of a queue URL, taken off before redis-py sees it: name -> (least, example).
URL_OPTIONS = {"concurrency": (1, 20), "wait_replicas": (0, 1), "wait_timeout": (1, 1000)}
DEFAULT_WAIT_TIMEOUT_MS = 1000


def split_url_options(url: str | None, setting: str = "URL") -> tuple[str | None, dict[str, int]]:
    """Split tasks_app's own parameters (``?concurrency=N``, ``wait_replicas=N``, ``wait_timeout=ms``) off a
    Redis URL. Returns the URL without them and the whole numbers given (absent ones left out).
    Raises ``ImproperlyConfigured`` naming ``setting`` for a value that is not a whole number >= its least."""
    if url is None:
        return None, {}
    parts = urlsplit(url)
    if spilled_password(parts):
        # A password holding / ? # or @ unencoded: the host redis-py would read is part of the password.
        raise ImproperlyConfigured(
            f"{setting}: the URL has a '#', or an '@' after its host, so its password would be read as part of "
            "its address: percent-encode / ? # @ in the password (%2F %3F %23 %40)."
        )
    query = parse_qsl(parts.query, keep_blank_values=True)
    _check_parameters(parts.scheme, query, setting)
    database = unquote(parts.path).replace("/", "")  # as redis-py reads it
    if parts.scheme in ("redis", "rediss") and database and not database.isdigit():
        # redis-py ignores a database it cannot read as a number, and uses database 0: another's, perhaps.
        raise ImproperlyConfigured(
            f"{setting}: the URL's database {database!r} is not a number, and redis-py would use database 0 "
            "instead: give its number, for example redis://localhost:6379/7."
        )
    found: dict[str, int] = {}
    for name, (least, example) in URL_OPTIONS.items():
        values = [v for k, v in query if k == name]
        if not values:
            continue
        raw = values[-1]
        if not raw.isdigit() or int(raw) < least:
            raise ImproperlyConfigured(
                f"{setting}: {name}={raw!r} must be a whole number of at least {least}, "
                f"for example redis://localhost:6379/0?{name}={example}."
            )
        if name == "concurrency" and (problem := too_concurrent(f"{setting}: concurrency={raw}", int(raw))):
            raise ImproperlyConfigured(problem)
        found[name] = int(raw)
    if not found:
        return url, {}
    rest = urlencode([(k, v) for k, v in query if k not in URL_OPTIONS])
    return urlunsplit(parts._replace(query=rest)), found


def _check_parameters(scheme: str, query: list[tuple[str, str]], setting: str) -> None:
    # A parameter redis-py does not take, or a value it cannot read, fails every connection later, with a
    # traceback deep inside it. Blank ones it ignores. Where a password may have spilled into the query (an
    # '@' in it), no name or value is quoted: they may be part of it.
    if scheme not in ("redis", "rediss", "unix"):
        return  # redis+sentinel:// URLs: redis_urls.parse_sentinel checks theirs
    from redis.connection import URL_QUERY_ARGUMENT_PARSERS

    from .redis_urls import NOT_FROM_A_URL, TLS_PARAMETERS, url_parameters

    known = url_parameters(scheme) | set(URL_OPTIONS)
    quote = not any("@" in value for _, value in query)
    encode = "if the password holds / ? # @, percent-encode them (%2F %3F %23 %40)"
    for name, value in query:
        if not value or name in URL_OPTIONS:
            continue
        if name not in known:
            if not quote:
                raise ImproperlyConfigured(f"{setting}: the URL has a parameter redis-py does not take; {encode}.")
            if name in NOT_FROM_A_URL:
                hint = f" ({NOT_FROM_A_URL[name]})"
            elif name in TLS_PARAMETERS:
                hint = " (TLS needs a rediss:// URL)"
            else:
                hint = did_you_mean(name, list(known))
            raise ImproperlyConfigured(
                f"{setting}: {scheme}:// URLs take no parameter {name!r}{hint}. They take {', '.join(sorted(known))}."
            )
        parse = URL_QUERY_ARGUMENT_PARSERS.get(name)
        try:
            if parse is not None:
                parse(value)
        except (TypeError, ValueError):
            shown = f"={value!r}" if quote else ""
            raise ImproperlyConfigured(
                f"{setting}: the URL's parameter {name}{shown} is not a value redis-py can read; "
                + ("see redis-py's URL parameters." if quote else f"{encode}.")
            ) from None


def split_concurrency(url: str | None, setting: str = "URL") -> tuple[str | None, int | None]:
    """Split the original setup's ``?concurrency=N`` (and tasks_app's other parameters) off a Redis URL.

    Returns the URL without them, and N (or None when absent).
    """
    url, found = split_url_options(url, setting)
    return url, found.get("concurrency")
