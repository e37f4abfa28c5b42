"""Settings of the bare ``saq`` CLI worker in ``bench/peers.py``: SAQ's own RedisQueue, no Django.

    python -m saq bench.peer_jobs.saq_worker.settings

``PEERS_PROBE_URL`` is the Redis the benchmark gives every system; ``PEERS_CONCURRENCY`` the concurrency.
"""

import os

from saq import Queue

from .asyncio_jobs import peer_io, peer_noop

settings = {
    "queue": Queue.from_url(os.environ["PEERS_PROBE_URL"]),
    "functions": [peer_noop, peer_io],
    "concurrency": int(os.environ["PEERS_CONCURRENCY"]),
}
