"""The dashboard's list of cron entries, each with its run as Redis stores it.

What the settings say an entry should do and what Redis will actually do can differ for up to one
schedule tick after a deploy, or for as long as no worker of the entry's queue runs: the page shows
the stored run, so an operator sees what will fire, not what should.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from .. import conf
from ..engine.cron_sync import stored_runs
from ..exceptions import TasksAppError
from ..operations import REDIS_ERRORS, connection
from ..process.runner import cron_schedules
from ..redis_facts import describe


@dataclass(frozen=True)
class CronRow:
    """One entry: its task, expression and queue; the stored run's status ("queued", "active", ...;
    None when nothing is stored), due time (aware, in ``TIME_ZONE``) and, when it differs, the expression
    it was written for (a deploy not yet applied by a worker); or why it cannot be read."""

    name: str
    expression: str
    queue: str
    key: str = ""
    status: str | None = None
    due: datetime | None = None
    error: str | None = None
    stored_expression: str | None = None  # what the stored run was written for, when not ``expression``


async def cron_rows() -> list[CronRow]:
    """Every cron entry of ``SAQ["CRON_JOBS"]``, queue by queue, in the settings' order."""
    tz = zoneinfo.ZoneInfo(settings.TIME_ZONE or "UTC")
    rows: list[CronRow] = []
    known = set()
    for name in conf.queues():
        entries = cron_schedules(name, skip_unknown=True)
        known.update(entry.name for entry in entries)
        if not entries:
            continue
        try:
            runs = await stored_runs(connection(name), entries, tz)
        except REDIS_ERRORS as exc:
            error = describe(name, exc)
            rows += [CronRow(entry.name, entry.expression, name, error=error) for entry in entries]
            continue
        except (TasksAppError, ValueError) as exc:  # an entry whose run cannot be built: checks say which
            error = f"Its runs cannot be built ({exc}); see manage.py check."
            rows += [CronRow(entry.name, entry.expression, name, error=error) for entry in entries]
            continue
        rows += [
            CronRow(
                run.name, run.expression, name, run.key, run.status, run.due,
                stored_expression=run.stored_expression if run.stored_expression != run.expression else None,
            )
            for run in runs
        ]  # fmt: skip
    for entry in conf.cron_jobs():
        if entry.task not in known:  # names no registered task: no worker will run it
            rows.append(CronRow(entry.task, entry.cron, "?", error="no such task is registered (check E004)"))
    return rows
