"""A sync task's thread cannot be stopped: at a stop, its job stays its worker's (ACTIVE, heartbeated) until
the thread returns, however many cancellations come meanwhile (a timeout, the grace period's end, a forced
stop). It is never put back on its queue while the thread runs, so another worker never runs it beside
itself; what the thread gives is its outcome."""

import json
import signal

import pytest
from saq.job import Status

from tasks_app import enqueue
from tests.queue_state import stored
from tests.sampleapp.models import Note

from .helpers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


class Workers:
    """A worker that takes the test's job, then another, which sweeps each second: a job put back, or
    left silent, would be its within a second."""

    def __init__(self, start_worker, subprocess_env, grace: int) -> None:
        saq = {"SHUTDOWN_GRACE_PERIOD": grace, "TIMERS": {"sweep": 1}}
        self.start, self.env = start_worker, {**subprocess_env, "TEST_SAQ": json.dumps(saq)}
        self.stopping = self._started()
        self.other = None

    def _started(self):
        worker = self.start(env=self.env)
        worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
        return worker

    def start_other(self):
        self.other = self._started()


def notes(prefix: str) -> list[str]:
    return list(Note.objects.filter(text__startswith=prefix).order_by("id").values_list("text", flat=True))


def test_a_stop_forced_after_the_grace_period_leaves_a_running_sync_job_to_its_thread(start_worker, subprocess_env):
    workers = Workers(start_worker, subprocess_env, grace=1)
    key = enqueue("sync_sleep_then_note", seconds=7, text="held sync", heartbeat=2).key
    wait_until(lambda: notes("held sync") == ["held sync started"], message="the job to start")
    workers.start_other()
    stopping, other = workers.stopping, workers.other
    stopping.signal(signal.SIGTERM)
    stopping.wait_for_output("did not stop within")  # the grace period is over, the thread runs on
    stopping.signal(signal.SIGTERM)  # forced: more than a second after the first
    stopping.wait_for_output("re-queueing in-flight jobs")
    assert stopping.wait(30) == 0  # once the thread has returned
    job = stored(key)
    assert (job.status, job.attempts, job.result) == (Status.COMPLETE, 1, "held sync")
    assert notes("held sync") == ["held sync started", "held sync finished"]  # ran once, never beside itself
    assert "outcome=complete" in stopping.output and "outcome=requeued" not in stopping.output
    assert f"key={key}" not in other.output


def test_a_sync_job_past_its_timeout_is_retried_only_once_its_thread_has_returned_even_when_its_worker_stops(
    start_worker, subprocess_env
):
    workers = Workers(start_worker, subprocess_env, grace=1)
    key = enqueue("sync_overrun", seconds=6, heartbeat=2).key  # timeout 1 s, retries 2, no retry delay
    wait_until(lambda: notes("overrun") == ["overrun 1 started"], message="the first attempt to start")
    workers.start_other()
    stopping = workers.stopping
    stopping.wait_for_output("did not stop within")  # timed out and cancelled; its thread runs on
    stopping.signal(signal.SIGTERM)  # the grace period (1 s) ends while the thread runs
    assert stopping.wait(30) == 0
    assert "outcome=timeout-retrying" in stopping.output and "outcome=requeued" not in stopping.output
    wait_until(lambda: len(notes("overrun")) == 3, message="the retry to start on the other worker")
    # The retry starts only after the first attempt's thread has finished: never two at once.
    assert notes("overrun") == ["overrun 1 started", "overrun 1 finished", "overrun 2 started"]
    assert stored(key).attempts == 2
