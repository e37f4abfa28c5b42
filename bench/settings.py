"""Settings for bench/ scripts: the test settings, a Redis database of the benchmarks' own (db 9),
and the benchmark jobs registered the original setup's way, by dotted path."""

import os

from tests.settings import *  # noqa: F403
from tests.settings import SAQ

# The site's production default (the test settings use 0, to let test databases be dropped at once).
DATABASES["default"]["CONN_MAX_AGE"] = 60  # noqa: F405

BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
SAQ = {
    **SAQ,
    "QUEUES": {"default": {"URL": BENCH_REDIS_URL, "CONCURRENCY": 10}},
    "TASK_FUNCTIONS": ["bench.jobs.bench_noop", "bench.jobs.bench_orm_read_write"],
    "TIMERS": {"schedule": 1, "worker_info": 10, "sweep": 10, "abort": 1, "outbox": 5},
}
