"""dramatiq's app in ``bench/peers.py``: a RedisBroker on the benchmark's Redis, the peer jobs as actors.

python -m dramatiq bench.peer_jobs.dramatiq_app --processes 1 --threads 10
"""

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from . import threaded_jobs

broker = RedisBroker(url=os.environ["PEERS_PROBE_URL"])
dramatiq.set_broker(broker)
peer_noop = dramatiq.actor(threaded_jobs.peer_noop, actor_name="peer_noop", broker=broker)
peer_io = dramatiq.actor(threaded_jobs.peer_io, actor_name="peer_io", broker=broker)
