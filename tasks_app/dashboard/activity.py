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

from django.utils import timezone
from django.utils.html import format_html, format_html_join
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
    """The chart of ``rows`` (from ``last_hour``) for queue ``queue_name``."""
    totals = {name: sum(getattr(row, name) for row in rows) for name, _, _ in SERIES}
    peak = max([1, *(getattr(row, name) for row in rows for name, _, _ in SERIES)])
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    step = plot_w / max(len(rows) - 1, 1)

    def y(count: int) -> float:
        return TOP + plot_h - count / peak * plot_h

    lines = format_html_join(
        "",
        '<polyline fill="none" stroke="{}" stroke-width="2" points="{}"><title>{}</title></polyline>',
        (
            (
                colour,
                " ".join(f"{LEFT + i * step:.1f},{y(getattr(row, name)):.1f}" for i, row in enumerate(rows)),
                f"{label}: {totals[name]}",
            )
            for name, colour, label in SERIES
        ),
    )
    legend = format_html_join(
        "",
        '<g transform="translate({},4)"><rect width="10" height="10" fill="{}"></rect>'
        '<text x="14" y="9" font-size="11">{} ({})</text></g>',
        ((LEFT + 10 + 120 * i, colour, label, totals[name]) for i, (name, colour, label) in enumerate(SERIES)),
    )
    local = timezone.get_current_timezone()
    start = rows[0].start.astimezone(local) if rows else None
    end = rows[-1].start.astimezone(local) if rows else None
    title = f"Queue {queue_name}: jobs completed, failed and retried per minute over the last hour"
    desc = (
        f"From {start:%H:%M} to {end:%H:%M} ({timezone.get_current_timezone_name()}): "
        f"{totals['complete']} completed, {totals['failed']} failed, {totals['retried']} retried; "
        f"at most {peak} in one minute."
        if rows
        else "No data."
    )
    return format_html(
        '<svg class="tq-activity" role="img" aria-labelledby="tq-activity-{id}-title tq-activity-{id}-desc" '
        'viewBox="0 0 {w} {h}" width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">'
        '<title id="tq-activity-{id}-title">{title}</title><desc id="tq-activity-{id}-desc">{desc}</desc>'
        '<line x1="{left}" y1="{base}" x2="{right}" y2="{base}" stroke="#999"></line>'
        '<line x1="{left}" y1="{top}" x2="{left}" y2="{base}" stroke="#999"></line>'
        '<text x="{tick_x}" y="{top_text}" font-size="10" text-anchor="end">{peak}</text>'
        '<text x="{tick_x}" y="{base}" font-size="10" text-anchor="end">0</text>'
        '<text x="{left}" y="{label_y}" font-size="10">{start}</text>'
        '<text x="{right}" y="{label_y}" font-size="10" text-anchor="end">{end}</text>'
        "{lines}{legend}</svg>",
        id=queue_name,
        w=WIDTH,
        h=HEIGHT,
        title=title,
        desc=desc,
        left=LEFT,
        right=LEFT + plot_w,
        top=TOP,
        base=TOP + plot_h,
        tick_x=LEFT - 4,
        top_text=TOP + 8,
        peak=peak,
        label_y=HEIGHT - 6,
        start=f"{start:%H:%M}" if start else "",
        end=f"{end:%H:%M}" if end else "",
        lines=lines,
        legend=legend,
    )
