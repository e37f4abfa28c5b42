"""Fixtures shared by the backend and dashboard tests: a clean Redis database and real workers."""

import asyncio
import io
import threading

import pytest
from django.core.management import call_command


@pytest.fixture(autouse=True)
def redis_client(redis_db):
    """This test's Redis database, empty before and after."""
    return redis_db


@pytest.fixture
def work():
    """Run the real worker (runworker --burst) in this process until the queues are empty."""

    def run(*args: str) -> str:
        out = io.StringIO()
        call_command("runworker", "--burst", *args, stdout=out, stderr=out)
        return out.getvalue()

    return run


@pytest.fixture
def worker_in_thread():
    """A real, long-running worker (not burst) on the default queue, in a thread; stopped after the test."""
    from tasks_app.process.runner import WorkerOptions, run

    started = threading.Event()
    state = {}

    def on_ready(workers):
        state["loop"], state["workers"] = asyncio.get_running_loop(), workers
        started.set()

    thread = threading.Thread(target=run, args=([WorkerOptions(queue="default", concurrency=2)], on_ready))
    thread.start()
    assert started.wait(10), "the worker did not start"
    yield state["workers"][0]
    for worker in state["workers"]:
        state["loop"].call_soon_threadsafe(worker.force_stop)
    thread.join(30)
    assert not thread.is_alive()
