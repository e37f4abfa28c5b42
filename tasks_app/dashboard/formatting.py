"""How the job page shows a job's fields to people: times as dates in ``TIME_ZONE``, values as JSON."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.utils import timezone

from ..engine.clock import job_time


def readable_times(value: Any, key: str = "") -> Any:
    """``value`` with every time in it (an ``at`` or ``*_at`` of epoch milliseconds, as the audit trail
    writes) shown as a date in TIME_ZONE, for people; everything else as it is."""
    if isinstance(value, dict):
        return {k: readable_times(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [readable_times(v) for v in value]
    if (key == "at" or key.endswith("_at")) and isinstance(value, int | float) and not isinstance(value, bool):
        moment = when(value)
        if isinstance(moment, datetime):
            return f"{timezone.localtime(moment):%Y-%m-%d %H:%M:%S %Z}"
    return value


def pretty(value: Any) -> str:
    try:
        return json.dumps(value, indent=2, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        return repr(value)


def seconds(start: int, end: int) -> float | None:
    return round((end - start) / 1000, 3) if start and end else None


def when(millis: float) -> datetime | str | None:
    """A job's time for its page: None when not set, "unknown" when no date can hold it."""
    return job_time(millis) or ("unknown" if millis else None)
