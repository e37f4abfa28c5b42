"""Reading settings from the environment, with errors that name the variable."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.Env()


def read_env_file(base_dir: Path) -> None:
    """Load ``.env`` when present; real environment variables win."""
    env_file = base_dir / ".env"
    if env_file.is_file():
        environ.Env.read_env(env_file, overwrite=False)


def url(var: str, default: str | None, schemes: set[str]) -> str | None:
    """Return the URL in ``var`` after checking that it parses and has a known scheme."""
    value = env.str(var, default=default)
    if value is None or value == "":
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a non-numeric port
    except ValueError as exc:
        raise ImproperlyConfigured(f"{var}={value!r} is not a valid URL: {exc}.") from exc
    if parts.scheme not in schemes:
        expected = ", ".join(sorted(f"{s}://" for s in schemes))
        raise ImproperlyConfigured(
            f"{var}={value!r} has an unsupported scheme {parts.scheme!r}; expected one of {expected}."
        )
    return value


def database(var: str, default: str) -> dict:
    value = url(var, default, set(environ.Env.DB_SCHEMES))
    try:
        return environ.Env.db_url_config(value)
    except Exception as exc:  # django-environ raises bare exceptions on odd input
        raise ImproperlyConfigured(f"{var}={value!r} could not be parsed: {exc}.") from exc


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def boolean(var: str, default: bool) -> bool:
    value = env.str(var, default=str(default)).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{var}={value!r} is not a boolean; use true or false.")


def integer(var: str, default: int, minimum: int = 0) -> int:
    value = env.str(var, default=str(default))
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < minimum:
        raise ImproperlyConfigured(f"{var}={value!r} must be a whole number >= {minimum}.")
    return number
