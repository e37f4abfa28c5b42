"""The engine: tasks_app's SAQ subclasses, and the only place that touches SAQ's internals.

- ``queue.AtomicRedisQueue`` (a ``saq.queue.redis.RedisQueue``): every job state change is one
  compare-and-set in Lua (``lua.py``).
- ``worker.Worker`` (a ``saq.Worker``): runs each attempt through those transitions, with
  heartbeats, aborts, cron (``cron.py``) and outage handling.

SAQ's private names used here, and why. ``tests/tasks_app/engine/test_saq_canaries.py`` checks
each one, so a SAQ upgrade that changes them fails there first, by name; SAQ's own test suite
runs against ``AtomicRedisQueue`` in CI (``tests/saq_conformance/``).

- ``Queue._enqueue``, ``Queue._update``, ``Queue._retry``, ``Queue._finish``: the backend hooks
  behind SAQ's public ``enqueue``/``update``/``retry``/``finish``. Overridden (SAQ's own bodies
  are not atomic), so that SAQ's public API on this queue goes through the compare-and-sets.
- ``Queue._before_enqueue``: runs the callbacks of ``register_before_enqueue``; ``submit`` and
  ``submit_many`` call it as SAQ's ``enqueue`` does.
- ``RedisQueue._pubsub`` (a ``saq.multiplexer.Multiplexer``: ``subscribe``, ``unsubscribe``): the one
  PSUBSCRIBE connection that ``listen`` shares; ``listen`` (``listening.py``) takes its messages from
  there, checks each against the job's record, and reads the records too while none come.

SAQ's behaviour relied on, also checked there: Redis key names (``namespace("queued")``,
``"active"``, ``"incomplete"``, ``"schedule"``, ``"sweep"``, ``"stats"`` and ``job_id``), so
SAQ's tools read these queues; ``Worker.start`` runs ``upkeep()`` and ``concurrency`` tasks of
``process()``; ``Worker.stop`` waits ``shutdown_grace_period_s`` for ``Worker.tasks`` and then
cancels them; ``Worker.SIGNALS``; the ``Worker.timers`` keys.
"""
