"""Settings of the harness's processes (its own and its workers'): ``bench.settings`` and

- the queue's URL from ``DIST_QUEUE_URL`` (a ``redis+sentinel://`` URL once Sentinel URLs exist;
  the primary's ``redis://`` URL before); for the figures, two queues that no worker serves, on the
  same Redis: ``plain`` (``DIST_PLAIN_URL``, no ``wait_replicas``) and ``durable``
  (``DIST_DURABLE_URL``, ``wait_replicas=1``), and ``throughput`` (plain), served only by the workers
  the throughput figure starts;
- the ledger's hooks, which record every execution (``ledger.py``), and the harness's tasks;
- short heartbeats and sweeps, so that a fault's consequences show within a run: a job whose worker
  stops heartbeating is swept after ``DIST_HEARTBEAT`` seconds (default 5);
- one cron entry, every 5 seconds.
"""

import os

from bench.settings import *  # noqa: F403
from bench.settings import SAQ

HEARTBEAT_S = int(os.environ.get("DIST_HEARTBEAT", "5"))

SAQ = {
    **SAQ,
    "QUEUES": {
        name: {"URL": os.environ.get(variable, SAQ["QUEUES"]["default"]["URL"]), "CONCURRENCY": 10}
        for name, variable in (
            ("default", "DIST_QUEUE_URL"),
            ("plain", "DIST_PLAIN_URL"),
            ("durable", "DIST_DURABLE_URL"),
            ("throughput", "DIST_PLAIN_URL"),
        )
    },
    "TASK_FUNCTIONS": [
        *SAQ["TASK_FUNCTIONS"],
        "bench.distributed.jobs.dist_work",
        "bench.distributed.jobs.dist_cron",
        "bench.distributed.jobs.dist_spin",
    ],
    "HOOKS": {
        "before_process": ["bench.distributed.ledger.before_process"],
        "after_process": ["bench.distributed.ledger.after_process"],
    },
    "CRON_JOBS": [{"task": "dist_cron", "cron": "* * * * * */5"}],
    "DEFAULT_JOB_OPTIONS": {
        "heartbeat": HEARTBEAT_S,
        "timeout": 120,
        "retries": 20,
        "retry_delay": 1,
        "ttl": 24 * 3600,
    },
    "TIMERS": {"schedule": 1, "worker_info": 2, "sweep": 1, "abort": 1, "outbox": 2},
    "SHUTDOWN_GRACE_PERIOD": 10,
}
