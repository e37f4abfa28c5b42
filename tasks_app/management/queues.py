"""The queues a command is asked to act on, checked against ``SAQ["QUEUES"]``."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError

from tasks_app import conf


def named_queues(requested: list[str] | None) -> list[str]:
    """``requested`` in order without repeats, or every configured queue when none is named.

    Raises ``CommandError`` naming the unknown queues and the configured ones (exit 1), or the settings
    error (exit 2, as for a URL refused when the settings load).
    """
    try:
        configured = conf.queues()
    except ImproperlyConfigured as exc:
        raise CommandError(str(exc), returncode=2) from None
    if not requested:
        return list(configured)
    unknown = [name for name in requested if name not in configured]
    if unknown:
        raise CommandError(
            f"Unknown queue(s) {', '.join(map(repr, unknown))}. Configured queues: {', '.join(configured)}. "
            'Add queues to SAQ["QUEUES"].'
        )
    return list(dict.fromkeys(requested))
