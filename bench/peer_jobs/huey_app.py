"""huey's app in ``bench/peers.py``: a RedisHuey on the benchmark's Redis, the peer jobs as huey tasks.

python -m huey.bin.huey_consumer bench.peer_jobs.huey_app.huey -k thread -w 10 -q
"""

import os

from huey import RedisHuey

from . import threaded_jobs

huey = RedisHuey("peers", url=os.environ["PEERS_PROBE_URL"])
peer_noop = huey.task(name="peer_noop")(threaded_jobs.peer_noop)
peer_io = huey.task(name="peer_io")(threaded_jobs.peer_io)
