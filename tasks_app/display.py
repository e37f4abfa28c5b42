"""How tasks_app's commands show a time to people: one format everywhere, in ``TIME_ZONE``."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone

FORMAT = "%Y-%m-%d %H:%M:%S %Z"


def show_time(moment: datetime | float) -> str:
    """``moment`` (aware, or epoch seconds) as ``2026-12-05 14:03:07 UTC`` in the current time zone.

    Raises ``ValueError``/``OverflowError``/``OSError`` for epoch seconds no date can hold.
    """
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    return f"{timezone.localtime(moment):{FORMAT}}"
