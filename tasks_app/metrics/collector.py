"""The scrape side of the metrics: a Prometheus collector that reads Redis and the database when scraped.

Its series, with their help texts, are built in ``_families`` (and listed in docs/tasks-app/metrics.md).
Each Redis read is per queue; a queue whose Redis cannot be read has ``tasks_app_queue_up`` 0 and none
of its other series. Register it in a registry of your own to serve it elsewhere:
``registry.register(TasksCollector())``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from django.apps import apps
from django.db import DatabaseError
from django.db.models import Count, Min, Q
from django.db.models.functions import Now
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .. import conf, redis_facts
from .. import operations as ops
from ..enqueueing.connections import background
from ..enqueueing.outbox import outbox_databases
from . import recording
from .recording import BUCKETS, metrics_key, parse_field

logger = logging.getLogger("tasks_app.metrics")

DEPTHS = ("queued", "active", "scheduled")


@dataclass
class QueueReading:
    """What one queue's Redis said, or ``up=False``."""

    name: str
    up: bool = False
    attempts: dict[tuple[str, str], int] = field(default_factory=dict)  # (task, outcome) -> count
    buckets: dict[str, dict[float, int]] = field(default_factory=dict)  # task -> upper bound -> count
    sums: dict[str, float] = field(default_factory=dict)  # task -> seconds
    depth: dict[str, int] = field(default_factory=dict)
    workers: int = 0
    paused: bool = False


async def read_queue(name: str) -> QueueReading:
    """One queue's counters, depth, workers and pause flag: the counters' hash and ``queue.depth()``
    (one pipeline), read side by side, so a scrape waits for one round trip per queue."""
    reading = QueueReading(name)
    queue = ops.connection(name)
    try:
        stored, depth = await asyncio.gather(queue.redis.hgetall(metrics_key(queue)), ops.adepth(name))
    except ops.REDIS_ERRORS as exc:
        logger.warning("Metrics: %s", redis_facts.describe(name, exc))
        return reading
    reading.up, reading.workers, reading.paused = True, depth.workers, depth.paused is not None
    reading.depth = {"queued": depth.queued, "active": depth.active, "scheduled": depth.scheduled}
    buckets: defaultdict[str, dict[float, int]] = defaultdict(dict)
    for raw, value in stored.items():
        try:
            match parse_field(raw):
                case (recording.ATTEMPTS, task, outcome):
                    reading.attempts[(task, outcome)] = int(value)
                case (recording.DURATION, task, le):
                    buckets[task][float(le)] = int(value)
                case (recording.DURATION_SUM, task):
                    reading.sums[task] = float(value)
        except ValueError:
            continue  # not written by tasks_app: not ours to show
    reading.buckets = dict(buckets)
    return reading


async def read_queues(names: Sequence[str]) -> list[QueueReading]:
    return list(await asyncio.gather(*(read_queue(name) for name in names)))


@dataclass
class OutboxReading:
    database: str
    up: bool = False
    entries: int = 0
    set_aside: int = 0
    oldest_age_s: float = 0.0


def read_outbox() -> list[OutboxReading]:
    """The outbox backlog in every database that holds it (sync: the ORM, in this thread)."""
    readings = []
    for alias in outbox_databases():
        reading = OutboxReading(alias)
        try:
            entries = apps.get_model("tasks_app", "OutboxEntry").objects.using(alias)
            found = entries.aggregate(
                entries=Count("id"),
                set_aside=Count("id", filter=Q(retry_at__isnull=False)),
                oldest_age=Now() - Min("created"),  # the database's clock, which wrote ``created``
            )
        except DatabaseError as exc:
            logger.warning("Metrics: the outbox in database %r cannot be read: %s", alias, exc)
        else:
            reading.up, reading.entries, reading.set_aside = True, found["entries"], found["set_aside"]
            if found["oldest_age"] is not None:
                reading.oldest_age_s = max(0.0, found["oldest_age"].total_seconds())
        readings.append(reading)
    return readings


class TasksCollector(Collector):
    """Yields the series above, read when collected. ``queues``: which to read (default: all configured)."""

    def __init__(self, queues: Sequence[str] | None = None) -> None:
        self.queues = list(queues) if queues else None

    def describe(self) -> Iterator[Metric]:
        # Names only, so that registering does not read Redis.
        return iter(_families([], []))

    def collect(self) -> Iterator[Metric]:
        names = self.queues or list(conf.queues())
        try:
            queues = background.run(read_queues(names), timeout=ops.TIMEOUT_S)
        except ops.REDIS_ERRORS:  # the whole read timed out
            queues = [QueueReading(name) for name in names]
        return iter(_families(queues, read_outbox()))


def _families(queues: list[QueueReading], outboxes: list[OutboxReading]) -> list[Metric]:
    attempts = CounterMetricFamily(
        "tasks_app_job_attempts",
        "Job attempts that workers finished, by outcome: complete, failed and timeout end a job; "
        "retrying and timeout-retrying put it back for another attempt; aborted, requeued (worker "
        "stopping), lost (taken over by the sweep) and unknown (an outcome no replica confirmed before "
        "the job moved on) are the others.",
        labels=["queue", "task", "outcome"],
    )
    durations = HistogramMetricFamily(
        "tasks_app_job_duration_seconds", "How long job attempts ran, in seconds.", labels=["queue", "task"]
    )
    depth = GaugeMetricFamily(
        "tasks_app_queue_jobs",
        "Jobs waiting or running now: queued (runnable), active (running, or being aborted), "
        "scheduled (for later, including retries waiting for their delay).",
        labels=["queue", "status"],
    )
    workers = GaugeMetricFamily("tasks_app_workers", "Live workers of the queue.", labels=["queue"])
    paused = GaugeMetricFamily(
        "tasks_app_queue_paused", "1 while the queue is paused: its workers take no new jobs.", labels=["queue"]
    )
    up = GaugeMetricFamily("tasks_app_queue_up", "1 if the queue's Redis answered this scrape.", labels=["queue"])
    for queue in queues:
        up.add_metric([queue.name], 1 if queue.up else 0)
        if not queue.up:
            continue
        for (task, outcome), count in sorted(queue.attempts.items()):
            attempts.add_metric([queue.name, task, outcome], count)
        for task, bounds in sorted(queue.buckets.items()):
            durations.add_metric([queue.name, task], _cumulative(bounds), queue.sums.get(task, 0.0))
        for status in DEPTHS:
            depth.add_metric([queue.name, status], queue.depth[status])
        workers.add_metric([queue.name], queue.workers)
        paused.add_metric([queue.name], 1 if queue.paused else 0)
    entries = GaugeMetricFamily(
        "tasks_app_outbox_entries",
        "Jobs recorded by enqueue_on_commit that Redis has not taken yet.",
        labels=["database"],
    )
    oldest = GaugeMetricFamily(
        "tasks_app_outbox_oldest_age_seconds",
        "Age of the oldest job waiting in the outbox, in seconds (0 when it is empty).",
        labels=["database"],
    )
    set_aside = GaugeMetricFamily(
        "tasks_app_outbox_set_aside",
        "Outbox jobs set aside because they cannot become jobs (queue not configured, payload SAQ refuses); "
        "each row's last_error says what to fix. Included in tasks_app_outbox_entries.",
        labels=["database"],
    )
    outbox_up = GaugeMetricFamily(
        "tasks_app_outbox_up", "1 if the outbox's database answered this scrape.", labels=["database"]
    )
    for outbox in outboxes:
        outbox_up.add_metric([outbox.database], 1 if outbox.up else 0)
        if outbox.up:
            entries.add_metric([outbox.database], outbox.entries)
            oldest.add_metric([outbox.database], round(outbox.oldest_age_s, 3))
            set_aside.add_metric([outbox.database], outbox.set_aside)
    return [attempts, durations, depth, workers, paused, up, entries, oldest, set_aside, outbox_up]


def _cumulative(bounds: dict[float, int]) -> list[tuple[str, float]]:
    """Per-bucket counts as Prometheus's cumulative ``le`` buckets: every bucket of ``BUCKETS`` (so
    that series of different tasks add up bucket by bucket), up to "+Inf"."""
    total, buckets = 0, []
    for bound in sorted(set(BUCKETS) | set(bounds)):
        total += bounds.get(bound, 0)
        buckets.append((floatToGoString(bound), total))
    return buckets


def registry() -> CollectorRegistry:
    """A registry holding only a ``TasksCollector``: what the dashboard's ``metrics`` URL serves."""
    collected = CollectorRegistry()
    collected.register(TasksCollector())
    return collected
