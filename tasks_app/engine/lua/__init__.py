"""The Lua scripts behind every job state change: each is one atomic compare-and-set in Redis.

The header-first layout below is kept for correctness first: its plain alternative (``cjson.decode``
and ``cjson.encode`` in every script) fails ``test_big_integers_empty_lists_and_quotes_survive_every_rewrite``
(2**62 + 1 comes back as a float). Measured against it anyway (CPU per job, worker processes +
redis-server, medians of 3 interleaved rounds, 2 cores shared with 7 other sessions): no-op jobs at
c=10, 128 us vs 150 us (1.17x); 20 ms I/O at c=200, 143 us vs 143 us (1.01x); enqueue_many, 1.0x
within noise. ``uv run python bench/pieces.py --variants all,no-header_first`` prints them.

A job is stored as JSON with a fixed header of its state and times (``codec.py``). The scripts, by
concern: ``attempts.py`` (a worker's take, heartbeat and outcomes), ``records.py`` (enqueue, record
compare-and-sets, pause, worker info), ``upkeep.py`` (schedule, sweep). Every time a script stamps or
compares is Redis's own (``TIME``), never a host's: hosts' clocks may disagree by minutes.

Three kinds of compare-and-set are used:

- **owner**: the worker that runs an attempt writes its outcome only while the stored
  job is still that attempt (same ``worker_id`` and ``attempts``) in an expected status;
- **record**: a reader that decided from a job it read (sweep, abort, dashboard) writes
  only if the stored record is still byte-for-byte what it read;
- **header**: take, touch and finishing an abort rewrite the header in Lua.

A job that has reached a terminal status (complete, failed, aborted) is never written
again except by a new enqueue of its key.
"""

from . import attempts, limits, records, upkeep
from .codec import HEADER_CODEC, PLAIN_CODEC

NAMES = (
    "enqueue", "take", "activate", "finish", "finish_and_take", "requeue", "update", "touch", "end_abort",
    "replace", "schedule", "sweep_scan", "sweep_gone", "drop_entry", "relist", "delete_if_unchanged", "due", "pause",
    "worker_info", "depth", "limiters", "enqueue_chain",
)  # fmt: skip


def source(name: str, header_first: bool = True) -> str:
    """The Lua of script ``name`` (one of ``NAMES``); without ``header_first``, with ``PLAIN_CODEC``."""
    upper = name.upper()
    script = next(getattr(module, upper) for module in (attempts, records, upkeep, limits) if hasattr(module, upper))
    return script if header_first else script.replace(HEADER_CODEC, PLAIN_CODEC)
