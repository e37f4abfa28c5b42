"""Reading settings from the environment, with errors that name the variable."""

from __future__ import annotations

import re
import zoneinfo
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.Env()

# Public on purpose: it is only ever used with DEBUG on, or by commands that serve nothing
# (pydotorg/serving.py refuses to serve on it). Here, not in serving.py, so settings.py reads it
# without importing an app module.
DEV_SECRET_KEY = "insecure-dev-key-set-SECRET_KEY-in-production"


def read_env_file(base_dir: Path) -> None:
    """Load ``.env`` when present; real environment variables win."""
    env_file = base_dir / ".env"
    if env_file.is_file():
        environ.Env.read_env(env_file, overwrite=False)


# A '?' or '#' in the user name or password, not percent-encoded, ends the authority early: the rest
# of the secret becomes the query or fragment, followed by '@host'. (A '=' means a real query.)
_UNENCODED_IN_USERINFO = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#@]*[?#][^/@=]*@")
_ENCODE_HINT = "a '/', '?', '#' or '@' in the user name or password must be percent-encoded (%2F, %3F, %23, %40)"


def url(var: str, default: str | None, schemes: set[str]) -> str | None:
    """Return the URL in ``var`` after checking that it parses and has a known scheme.

    Error messages never show the password: a URL that parses is shown redacted, one that does
    not is not shown at all (it may hold a secret anywhere), only what is wrong with it.
    """
    value = env.str(var, default=default)
    if value is None or value == "":
        return None
    if _UNENCODED_IN_USERINFO.match(value):
        raise ImproperlyConfigured(
            f"{var} is not a valid URL: its user name or password seems to hold a '?' or '#', "
            "which must be percent-encoded (%3F, %23)."
        )
    try:
        parts = urlsplit(value)
        if "," not in parts.netloc:  # redis+sentinel:// lists host:port pairs; tasks_app checks those
            parts.port  # noqa: B018 - raises ValueError on a non-numeric port
    except ValueError as exc:
        # Not chained: urllib's message may quote part of the secret (the "port" of a cut-short URL).
        raise ImproperlyConfigured(f"{var} is not a valid URL: {_problem(exc)}; {_ENCODE_HINT}.") from None
    expected = "one of " + ", ".join(sorted(f"{s}://" for s in schemes))
    if "://" not in value:
        raise ImproperlyConfigured(f"{var} is not a URL: it has no scheme; expected {expected}.")
    if parts.scheme not in schemes:
        from tasks_app.redaction import redact_url  # only to explain an error: settings import no app

        base = parts.scheme.partition("+")[0]
        if base != parts.scheme and base in schemes:  # postgresql+asyncpg://, SQLAlchemy's form
            expected = f"{base}:// (Django chooses the driver itself: leave out {parts.scheme[len(base) :]!r})"
        raise ImproperlyConfigured(
            f"{var}={redact_url(value)!r} has an unsupported scheme {parts.scheme!r}; expected {expected}."
        )
    return value


def _problem(exc: ValueError) -> str:
    """What urllib found wrong, in words that quote nothing from the URL."""
    text = str(exc)
    if text.startswith("Port out of range"):
        return "its port is not from 0 to 65535"
    if text.startswith("Port could not be cast"):
        return "its port is not a number"
    if "IPv6" in text:
        return "its host has an unmatched '[' or ']'"
    if "NFKC" in text:
        return "its host has characters that change under Unicode normalization"
    return "it does not parse"


# The schemes whose backend this project can load: psycopg (pyproject) and Python's own sqlite3.
# django-environ knows 22 (mysql://, oracle://, postgis:// ...): their drivers or GIS libraries are
# not installed, and they failed with two chained tracebacks at the first query.
DATABASE_SCHEMES = {
    scheme
    for scheme, backend in environ.Env.DB_SCHEMES.items()
    if backend in ("django.db.backends.postgresql", "django.db.backends.sqlite3")
}


def database(var: str, default: str) -> dict:
    value = url(var, default, DATABASE_SCHEMES)
    parts = urlsplit(value)
    if "@" in parts.path and parts.scheme != "sqlite":  # sqlite's path is a file's: it may hold an '@'
        # postgres://u:p@ss/word@host/db: an unencoded '/' in the password ends the host early, and the rest
        # of the password becomes the database name (a name with '@' in it is one to percent-encode too).
        # The value is not shown: the path holds part of the password.
        raise ImproperlyConfigured(
            f"{var} is not a valid URL: its database name has an '@' in it, so its password was read as part "
            f"of its address; {_ENCODE_HINT}."
        )
    try:
        config = environ.Env.db_url_config(value)
    except Exception as exc:  # django-environ raises bare exceptions on odd input
        from tasks_app.redaction import redact_url  # only to explain an error: settings import no app

        raise ImproperlyConfigured(
            f"{var}={redact_url(value)!r} could not be parsed: {_without_password(str(exc), value)}."
        ) from None
    config.update(_database_options(var, parts.query))
    return config


# The seconds a database connection is reused (CONN_MAX_AGE, or ?conn_max_age= in DATABASE_URL).
# A day at most: a 400-digit age overflowed at every request, and an older connection brings nothing.
MAX_CONN_MAX_AGE = 86400
# The query options django-environ lifts into the database settings (its _DB_BASE_OPTIONS), read
# with literal_eval: 'abc' stayed a string (every request a 500), 'false' a true string.
_BOOLEAN_DB_OPTIONS = ("atomic_requests", "autocommit", "conn_health_checks", "disable_server_side_cursors")


def _database_options(var: str, query: str) -> dict[str, object]:
    """The options of a database URL's query that become settings, checked; django-environ's reading."""
    checked: dict[str, object] = {}
    for key, values in parse_qs(query).items():  # parse_qs and the first value, as django-environ reads it
        name, raw = key.lower(), values[0]
        if name == "conn_max_age":
            if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_CONN_MAX_AGE:
                raise ImproperlyConfigured(
                    f"{var}: conn_max_age={raw[:40]!r} must be a whole number from 0 to {MAX_CONN_MAX_AGE} "
                    f"(seconds a connection is reused), e.g. ?conn_max_age=60."
                )
            checked["CONN_MAX_AGE"] = int(raw)
        elif name in _BOOLEAN_DB_OPTIONS:
            word = raw.strip().lower()
            if word not in _TRUE | _FALSE or not word:
                raise ImproperlyConfigured(f"{var}: {name}={raw[:40]!r} is not a boolean; use true or false.")
            checked[name.upper()] = word in _TRUE
    return checked


def _without_password(text: str, value: str) -> str:
    from tasks_app.redaction import MASK

    password = urlsplit(value).password
    for secret in {password, unquote(password or "")} - {None, ""}:
        text = text.replace(secret, MASK)
    return text


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def boolean(var: str, default: bool) -> bool:
    value = env.str(var, default=str(default)).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{var}={value!r} is not a boolean; use true or false.")


def integer(var: str, default: int | None, minimum: int = 0, maximum: int | None = None) -> int | None:
    """The whole number in ``var``; ``default`` when unset (None: leave it to the app's own default)."""
    value = env.str(var, default=None)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < minimum:
        raise ImproperlyConfigured(f"{var}={value!r} must be a whole number >= {minimum}.")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{var}={value[:40]!r} must be a whole number from {minimum} to {maximum}.")
    return number


def text(var: str) -> str | None:
    """The text in ``var`` as given (blank included), or None when unset."""
    return env.str(var, default=None)


def boolean_or_list(var: str) -> bool | list[str] | None:
    """None when unset; a boolean for true/false (and the like); else the comma-separated items."""
    value = env.str(var, default=None)
    if value is None:
        return None
    if value.strip().lower() in _TRUE | _FALSE:
        return boolean(var, default=False)
    return [item.strip() for item in value.split(",") if item.strip()]


def only_set(values: dict[str, object]) -> dict[str, object]:
    """``values`` without the unset ones (None), so an app's conf module supplies its defaults."""
    return {key: value for key, value in values.items() if value is not None}


def redis_url(var: str, default: str | None) -> tuple[str | None, int | None]:
    """The Redis URL in ``var`` and the worker concurrency its ``?concurrency=N`` asks for (or None).

    The parameter is the original setup's; it is taken off the URL, which redis-py would refuse.
    """
    value = url(var, default, {"redis", "rediss", "unix", "redis+sentinel"})
    if value is None:
        return None, None
    parts = urlsplit(value)
    # The other parameters are kept exactly as written; of several concurrency=, the last one counts.
    kept = [pair for pair in parts.query.split("&") if pair and pair.partition("=")[0] != "concurrency"]
    asked = [pair.partition("=")[2] for pair in parts.query.split("&") if pair.partition("=")[0] == "concurrency"]
    if not asked:
        return value, None
    if not asked[-1].isdigit() or int(asked[-1]) < 1:
        raise ImproperlyConfigured(
            f"{var}: concurrency={asked[-1]!r} must be a whole number of at least 1, "
            "for example redis://localhost:6379/0?concurrency=20."
        )
    return urlunsplit(parts._replace(query="&".join(kept))), int(asked[-1])


def choice(var: str, default: str, choices: tuple[str, ...]) -> str:
    """``var``'s value, which must be one of ``choices`` (case-insensitive); raises naming the choices."""
    value = env.str(var, default=default).strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{var}={value!r} must be one of: {', '.join(choices)}.")
    return value


def time_zone(var: str, default: str) -> str:
    """The IANA time zone name in ``var`` (blank: ``default``); raises ``ImproperlyConfigured`` naming the
    variable for a name Python's zoneinfo does not know (Django's own error is a bare ValueError)."""
    value = env.str(var, default=default).strip() or default
    try:
        zoneinfo.ZoneInfo(value)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        raise ImproperlyConfigured(
            f"{var}={value[:60]!r} is not a time zone name: use an IANA name such as UTC or Europe/Amsterdam."
        ) from None
    return value
