"""Canaries: each SAQ internal that tasks_app.engine relies on (listed in its docstring) still exists.

After a SAQ upgrade, a failure here names the internal that moved, before any behaviour breaks.
"""

import inspect

import saq
from saq.queue.base import Queue
from saq.queue.redis import RedisQueue


def test_the_backend_hooks_the_queue_overrides_are_still_saqs_hooks():
    for name in ("_enqueue", "_update", "_retry", "_finish"):
        assert getattr(Queue, name).__isabstractmethod__, name  # still a hook a backend must provide
    # ... and still the one behind each public method
    assert "await self._enqueue(job)" in inspect.getsource(Queue.enqueue)
    assert "self._update(" in inspect.getsource(Queue.update)
    assert "self._retry(" in inspect.getsource(Queue.retry)
    assert "self._finish(" in inspect.getsource(Queue.finish)


def test_before_enqueue_callbacks_run_through_the_private_method():
    assert inspect.iscoroutinefunction(Queue._before_enqueue)
    assert "await self._before_enqueue(job)" in inspect.getsource(Queue.enqueue)


def test_key_names_are_saqs():
    queue = RedisQueue.__new__(RedisQueue)
    queue.name = "q"
    assert [queue.namespace(n) for n in ("queued", "active", "incomplete")] == [
        "saq:q:queued",
        "saq:q:active",
        "saq:q:incomplete",
    ]
    assert queue.job_id("k") == "saq:job:q:k"
    source = inspect.getsource(RedisQueue.__init__)
    for name in ("queued", "active", "incomplete", "schedule", "sweep", "stats"):
        assert f'self.namespace("{name}")' in source, name


def test_the_worker_lifecycle_tasks_app_builds_on():
    start, stop = inspect.getsource(saq.Worker.start), inspect.getsource(saq.Worker.stop)
    assert "self.upkeep()" in start and "self._process()" in start and "range(self.concurrency)" in start
    assert "self._shutdown_grace_period_s" in stop and "cancel_tasks" in stop
    assert "shutdown_grace_period_s" in inspect.signature(saq.Worker.__init__).parameters
    assert isinstance(saq.Worker.SIGNALS, list)
    worker = saq.Worker.__new__(saq.Worker)
    saq.Worker.__init__(worker, queue=None, functions=[])
    assert set(worker.timers) == {"schedule", "worker_info", "sweep", "abort"}
    assert isinstance(worker.tasks, set) and hasattr(worker, "event") and hasattr(worker, "pool")


def test_the_multiplexer_listen_subscribes_through():
    from saq.multiplexer import Multiplexer

    assert "self._pubsub = PubSubMultiplexer(" in inspect.getsource(RedisQueue.__init__)
    assert inspect.iscoroutinefunction(Multiplexer.subscribe) and inspect.iscoroutinefunction(Multiplexer.unsubscribe)
    assert "queue.put_nowait(message)" in inspect.getsource(Multiplexer.publish)  # messages arrive on the queue
