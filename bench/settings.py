"""Settings for bench/ scripts: the test settings, a Redis database of the benchmarks' own (leased),
and the benchmark jobs registered the original setup's way, by dotted path."""

import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import SAQ

# The site's production default (the test settings use 0, to let test databases be dropped at once).
DATABASES["default"]["CONN_MAX_AGE"] = 60  # noqa: F405

BENCH_TASKS = (
    "bench_noop",
    "bench_orm_read_write",
    "bench_sleep",
    "soak_noop",
    "soak_sleep",
    "soak_flaky",
    "soak_fail",
    "soak_long",
)
PEER_TASKS = ("peer_noop", "peer_io")  # bench/peers.py: the same jobs huey and dramatiq run
# A Redis database of the benchmarks' own: BENCH_REDIS_URL, or the one leased for this run (tests/settings.py).
BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL") or REDIS_URL  # noqa: F405
SAQ = {
    **SAQ,
    "QUEUES": {"default": {"URL": BENCH_REDIS_URL, "CONCURRENCY": 10}},
    "TASK_FUNCTIONS": [f"bench.jobs.{name}" for name in BENCH_TASKS]
    + [f"bench.peer_jobs.asyncio_jobs.{name}" for name in PEER_TASKS]
    + ["bench.limit_jobs.limited_noop"],  # bench/limits.py
    "TIMERS": {"schedule": 1, "worker_info": 10, "sweep": 10, "abort": 1, "outbox": 5},
    "CRON_JOBS": [],  # the site's feed refresh and search rebuild have no place in a benchmark
    # bench/soak.py shortens heartbeats and timers for its workers.
    **json.loads(os.environ.get("BENCH_SAQ", "{}")),
}
