"""The last hour of a queue, minute by minute, as an SVG chart drawn on the server.

The counts are the ones workers add to Redis with their metrics (``metrics/recording.py``: one hash
per minute, ``complete``/``failed``/``retried``). "Now" is Redis's clock (``TIME``), so every web
host draws the same hour. The SVG has ``role="img"``, a ``<title>`` saying what it shows and a
``<desc>`` with the totals, uses no script, and draws each series as a line in its own colour with a
legend in words, so it reads without colour too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import SafeString

from ..engine.queue import AtomicRedisQueue
from ..metrics.recording import activity_key

SERIES = (("complete", "#417690", "completed"), ("failed", "#ba2121", "failed"), ("retried", "#c4820e", "retried"))
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 160, 36, 22, 22


@dataclass(frozen=True)
class Minute:
    start: datetime
    complete: int
    failed: int
    retried: int


async def last_hour(queue: AtomicRedisQueue, minutes: int = 60) -> list[Minute]:
    """The ``minutes`` whole minutes before now (Redis's clock), oldest first, in two round trips."""
    seconds, _ = await queue.redis.time()
    current = int(seconds) // 60
    span = range(current - minutes + 1, current + 1)
    async with queue.redis.pipeline(transaction=False) as pipe:
        for minute in span:
            pipe.hgetall(activity_key(queue, minute))
        replies = await pipe.execute()
    rows = []
    for minute, counts in zip(span, replies, strict=True):
        value = {key.decode() if isinstance(key, bytes) else key: int(n) for key, n in counts.items()}
        rows.append(
            Minute(
                datetime.fromtimestamp(minute * 60, UTC),
                value.get("complete", 0),
                value.get("failed", 0),
                value.get("retried", 0),
            )
        )
    return rows


def svg(queue_name: str, rows: list[Minute]) -> SafeString:
    """The chart of ``rows`` (from ``last_hour``) for queue ``queue_name``, drawn by ``_activity.html``."""
    totals = {name: sum(getattr(row, name) for row in rows) for name, _, _ in SERIES}
    peak = max([1, *(getattr(row, name) for row in rows for name, _, _ in SERIES)])
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    step = plot_w / max(len(rows) - 1, 1)
    series = [
        {
            "colour": colour,
            "label": label,
            "total": totals[name],
            "legend_x": LEFT + 10 + 120 * i,
            "points": " ".join(
                f"{LEFT + j * step:.1f},{TOP + plot_h - getattr(row, name) / peak * plot_h:.1f}"
                for j, row in enumerate(rows)
            ),
        }
        for i, (name, colour, label) in enumerate(SERIES)
    ]
    local = timezone.get_current_timezone()
    start, end = (rows[0].start.astimezone(local), rows[-1].start.astimezone(local)) if rows else (None, None)
    desc = (
        f"From {start:%H:%M} to {end:%H:%M} ({timezone.get_current_timezone_name()}): "
        f"{totals['complete']} completed, {totals['failed']} failed, {totals['retried']} retried; "
        f"at most {peak} in one minute."
        if rows
        else "No data."
    )
    geometry = {"w": WIDTH, "h": HEIGHT, "left": LEFT, "right": LEFT + plot_w, "top": TOP, "base": TOP + plot_h}
    context = {"id": queue_name, "series": series, "peak": peak, "desc": desc, "start": start, "end": end}
    return render_to_string("tasks_app/dashboard/_activity.html", {**context, **geometry})
