"""Prometheus metrics for the task queues.

The workers are not the process that serves ``/metrics`` (they may be N children of one
``runworker --workers N``, on several hosts), so their counts travel through Redis:

- ``recording``: in each worker, an observer counts every attempt by task and outcome, with its
  duration, and an upkeep chore adds the counts to one Redis hash per queue (``HINCRBY`` in one
  transaction per tick, and once more when the worker stops). Every process adds to the same hash,
  so the totals include every child and every host, and only ever grow.
- ``collector``: at scrape time, reads those counters, the queue depth, the live workers and the
  pause flag from Redis, and the outbox backlog from the database. The dashboard serves it at
  ``/admin/tasks_app/taskqueue/metrics``.
"""
