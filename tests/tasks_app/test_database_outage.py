"""A database outage while jobs come in: the worker puts a job whose attempt found the database down back
on its queue without using up an attempt, takes no job until the database answers again, then runs it.
A failed query (the database answering) is a failure as before. PostgreSQL is reached through socat,
which the test stops and starts again: the outage."""

import os
import signal
import subprocess
import time
from urllib.parse import urlsplit

import pytest
from saq.job import Status

from bench.distributed.topology import forward
from tasks_app import enqueue
from tests.queue_state import stored
from tests.redis_server import free_port
from tests.sampleapp.models import Note

from .helpers import on_port, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


class Forwarder:
    """socat forwarding a free loopback port to PostgreSQL; ``stop`` and ``start`` make and end an outage."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.port, self.target, self.process = free_port(), target, None

    def start(self) -> None:
        subprocess.run([str(os.path.join(os.path.dirname(__file__), "..", "..", ".ci", "debian-tools"))], check=True)
        self.process = forward("127.0.0.1", self.port, self.target)

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)  # its children too: open connections drop
            self.process.wait()
            self.process = None


@pytest.fixture
def forwarded_env(subprocess_env):
    url = urlsplit(subprocess_env["TEST_DATABASE_URL"])
    forwarder = Forwarder((url.hostname, url.port or 5432))
    forwarder.start()
    yield forwarder, on_port(subprocess_env, forwarder.port)
    forwarder.stop()


def test_a_job_that_meets_the_database_down_waits_for_it_without_using_an_attempt(start_worker, forwarded_env):
    forwarder, env = forwarded_env
    worker = start_worker(env=env)
    worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
    forwarder.stop()
    key = enqueue("add_note", text="after the outage", retries=0).key
    # Found by the job's attempt (which goes back, "requeued"), or first by the outbox drain (then a slot
    # that takes the job hands it back at once, unattempted): either way no attempt is used.
    wait_until(lambda: "Lost the database" in worker.output, message="the outage to be logged")
    # Real time for a real process (no clock of its own to move): several of its probes, backing off from
    # 0.25 s, during which the job must stay queued, its attempts unused.
    time.sleep(1.5)
    assert (stored(key).status, stored(key).attempts) == (Status.QUEUED, 0)
    assert "outcome=failed" not in worker.output
    forwarder.start()
    wait_until(lambda: stored(key).status == Status.COMPLETE, message="the job to run once the database is back")
    assert Note.objects.filter(text="after the outage").count() == 1
    assert "The database is back after" in worker.output
    lines = [line for line in worker.output.splitlines() if f"key={key}" in line]
    assert [line.split("outcome=")[1].split()[0] for line in lines] in (["complete"], ["requeued", "complete"]), lines


def test_a_failed_query_with_the_database_up_is_an_ordinary_failure(start_worker, forwarded_env):
    _, env = forwarded_env
    worker = start_worker(env=env)
    worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
    key = enqueue("bad_query", retries=0).key
    job = wait_until(lambda: (j := stored(key)).status == Status.FAILED and j, message="the job to fail")
    assert "OperationalError" in job.error or "ProgrammingError" in job.error
    assert "Lost the database" not in worker.output
