"""What must hold before the site serves requests with DEBUG off, and the error when it does not.

Management commands (migrate, runworker, check) run with no configuration at all, on the
development key below. Serving pages is different: sessions, CSRF tokens and the messages
cookie are signed with SECRET_KEY, so a key that is public in this repository lets anyone
forge them. ``wsgi.py``, ``asgi.py`` and ``runserver`` call :func:`refuse_unsafe_serving`,
and ``manage.py check --deploy`` reports the same problems (pydotorg.E001, pydotorg.E002).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from django.core.exceptions import ImproperlyConfigured

from .env import DEV_SECRET_KEY

SECRET_KEY_PROBLEM = (
    "SECRET_KEY is not set (or is the development key, which is public in pydotorg/serving.py), so anyone "
    "could forge the site's sessions and signed cookies. Set SECRET_KEY in the environment or .env to a long "
    'random value, e.g. the output of: uv run python -c "import secrets; print(secrets.token_urlsafe(50))" '
    "(or set DEBUG=true to try the site on your own machine)."
)


def secret_key_is_public(secret_key: str) -> bool:
    return not secret_key or secret_key == DEV_SECRET_KEY


def static_manifest_missing() -> Path | None:
    """The manifest file that hashed static URLs need, when the storage uses one and it is absent."""
    from django.conf import settings
    from django.contrib.staticfiles.storage import ManifestFilesMixin
    from django.core.files.storage import storages

    storage = storages["staticfiles"]
    if not isinstance(storage, ManifestFilesMixin):
        return None
    manifest = Path(settings.STATIC_ROOT) / storage.manifest_name
    return None if manifest.is_file() else manifest


class Problem(NamedTuple):
    check_id: str  # what `manage.py check --deploy` calls it
    message: str


def serving_problems() -> list[Problem]:
    """Why the site must not serve requests as configured (empty when it may); DEBUG on is always fine."""
    from django.conf import settings

    if settings.DEBUG:
        return []
    problems = []
    if secret_key_is_public(settings.SECRET_KEY):
        problems.append(Problem("pydotorg.E001", SECRET_KEY_PROBLEM))
    manifest = static_manifest_missing()
    if manifest is not None:
        message = (
            f"Static files have not been collected ({manifest} is missing), so every page would fail. "
            "Run: uv run python manage.py collectstatic --noinput "
            "(or set DEBUG=true to serve them straight from the apps while developing)."
        )
        problems.append(Problem("pydotorg.E002", message))
    return problems


def explain(problems: list[Problem]) -> str:
    return "The site will not serve requests with DEBUG off:\n" + "\n".join(f"- {p.message}" for p in problems)


def refuse_unsafe_serving() -> None:
    """Raise ImproperlyConfigured naming each problem, so the server stops before its first request."""
    problems = serving_problems()
    if problems:
        raise ImproperlyConfigured(explain(problems))
