"""A sync task's thread cannot be stopped: at a stop, its job stays its worker's (ACTIVE, heartbeated) until
the thread returns, however many cancellations come meanwhile (a timeout, the grace period's end, a forced
stop). It is never put back on its queue while the thread runs, so another worker never runs it beside
itself; what the thread gives is its outcome."""

import json
import signal
import time

import pytest
from django.tasks import TaskResultStatus
from saq.job import Status

from tasks_app import enqueue
from tests.queue_state import live_workers, stored
from tests.redis_server import RedisServer
from tests.sampleapp.models import Note

from .backends import tasks as backend_tasks
from .helpers import manage, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


WORKER_INFO_S = 1  # a worker's info is written each second, kept for 2


class Workers:
    """A worker that takes the test's job, then another, which sweeps each second: a job put back, or
    left silent, would be its within a second."""

    def __init__(self, start_worker, subprocess_env, grace: int) -> None:
        saq = {"SHUTDOWN_GRACE_PERIOD": grace, "TIMERS": {"sweep": 1, "worker_info": WORKER_INFO_S}}
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


def test_a_stop_forced_after_the_grace_period_leaves_a_running_sync_job_to_its_thread(
    start_worker, subprocess_env, tmp_path
):
    switch = tmp_path / "switch"
    workers = Workers(start_worker, subprocess_env, grace=1)
    key = enqueue("sync_until_file", path=str(switch), text="held sync", heartbeat=2).key
    wait_until(lambda: notes("held sync") == ["held sync started"], message="the job to start")
    workers.start_other()
    stopping, other = workers.stopping, workers.other
    stopping.signal(signal.SIGTERM)
    stopping.wait_for_output("did not stop within")  # the grace period is over, the thread runs on
    stopping.signal(signal.SIGTERM)  # forced: more than a second after the first
    stopping.wait_for_output("re-queueing in-flight jobs")
    time.sleep(WORKER_INFO_S * 3)  # its heartbeat (2 s) and its info (kept 2 s) would lapse if not written
    assert stored(key).status == Status.ACTIVE and f"key={key}" not in other.output
    assert live_workers() == 2  # the stopping worker still says it is alive: it holds a running job
    switch.touch()
    assert stopping.wait(30) == 0  # once the thread has returned
    job = stored(key)
    assert (job.status, job.attempts, job.result) == (Status.COMPLETE, 1, "held sync")
    assert notes("held sync") == ["held sync started", "held sync finished"]  # ran once, never beside itself
    assert "outcome=complete" in stopping.output and "outcome=requeued" not in stopping.output
    assert f"key={key}" not in other.output
    assert live_workers() == 1


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


def supervised(start_worker, subprocess_env, switch, text: str):
    """A ``--workers 2`` supervisor (grace period 1 s), one of whose workers runs ``sync_until_file``."""
    env = {**subprocess_env, "TEST_SAQ": json.dumps({"SHUTDOWN_GRACE_PERIOD": 1})}
    supervisor = start_worker("--workers", "2", env=env)
    wait_until(lambda: supervisor.output.count("SIGTERM/SIGINT for a clean stop") == 2, message="two workers")
    key = enqueue("sync_until_file", path=str(switch), text=text).key
    wait_until(lambda: notes(text) == [f"{text} started"], message="the job to start")
    return supervisor, key


def test_a_supervisor_waits_for_a_worker_whose_sync_task_runs_on_instead_of_killing_it(
    start_worker, subprocess_env, tmp_path
):
    # It killed the child after the grace period and 10 s more: the job was left to the sweep, to run again.
    switch = tmp_path / "switch"
    try:
        supervisor, key = supervised(start_worker, subprocess_env, switch, "supervised")
        supervisor.signal(signal.SIGTERM)
        supervisor.wait_for_output("or its event loop is blocked")  # the grace period and 10 s more
        assert "A second signal forces the stop; a third kills them" in supervisor.output
        assert stored(key).status == Status.ACTIVE
    finally:
        switch.touch()  # a child left running (the supervisor killed) would hold the test database
    assert supervisor.wait(30) == 0
    job = stored(key)
    assert (job.status, job.attempts, job.result) == (Status.COMPLETE, 1, "supervised")
    assert notes("supervised") == ["supervised started", "supervised finished"]
    assert "did not stop in time; killed" not in supervisor.output


def test_a_third_signal_has_the_supervisor_kill_its_workers(start_worker, subprocess_env, tmp_path):
    switch = tmp_path / "switch"
    try:
        supervisor, key = supervised(start_worker, subprocess_env, switch, "killed")
        for request in ("stop", "force", "kill"):  # each more than a second after the last: not a duplicate
            supervisor.signal(signal.SIGTERM)
            supervisor.wait_for_output(f"SIGTERM: {request} 2 worker(s)")
            if request == "stop":
                supervisor.wait_for_output("did not stop within")  # the child's grace period is over
            time.sleep(1.1)
        assert supervisor.wait(30) == 1
        assert "ended by SIGKILL; its jobs run again once their heartbeat lapses" in supervisor.output
        assert "A worker process did not exit cleanly" in supervisor.output
        assert stored(key).status == Status.ACTIVE  # left to the sweep, once its heartbeat lapses
        assert notes("killed") == ["killed started"]
    finally:
        switch.touch()


def test_a_django_task_whose_thread_returns_after_the_grace_period_sends_its_success(
    start_worker, subprocess_env, tmp_path
):
    # Its success was stored, but task_finished was never sent: the runner took every cancellation for one
    # whose outcome the worker would write otherwise.
    switch = tmp_path / "switch"
    workers = Workers(start_worker, subprocess_env, grace=1)
    result = backend_tasks.until_file.enqueue(str(switch), "django task")
    wait_until(lambda: notes("django task") == ["django task started"], message="the task to start")
    workers.stopping.signal(signal.SIGTERM)
    workers.stopping.wait_for_output("did not stop within")  # the grace period is over, the thread runs on
    switch.touch()
    assert workers.stopping.wait(30) == 0
    result.refresh()
    assert (result.status, result.return_value) == (TaskResultStatus.SUCCESSFUL, "django task")
    assert notes("task_finished") == [f"task_finished {result.id} {TaskResultStatus.SUCCESSFUL}"]


def test_a_stopping_worker_whose_outcome_waits_for_redis_says_so_and_writes_it_once_redis_is_back(
    start_worker, subprocess_env, tmp_path
):
    switch = tmp_path / "switch"
    server = RedisServer(tmp_path).start()  # persistent: the job's record survives its restart
    try:
        env = {**subprocess_env, "TEST_REDIS_URL": server.url, "TEST_SAQ": json.dumps({"SHUTDOWN_GRACE_PERIOD": 1})}
        worker = start_worker(env=env)
        worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
        submitted = manage("enqueue", "sync_until_file", f"path={switch}", "text=outage at stop", env=env)
        assert submitted.returncode == 0, submitted.stderr
        key = submitted.stdout.split()[0]
        wait_until(lambda: notes("outage at stop") == ["outage at stop started"], message="the job to start")
        worker.signal(signal.SIGTERM)
        worker.wait_for_output("did not stop within")
        server.stop()
        switch.touch()  # the thread returns while Redis is down: its outcome waits
        worker.wait_for_output(f"Job {key}'s outcome (complete) waits for Redis: the worker is stopping")
        server.start()
        assert worker.wait(30) == 0
        assert json.loads(server.client().get(f"saq:job:default:{key}"))["status"] == "complete"
        assert "outcome=complete" in worker.output
    finally:
        server.stop()


def test_a_stop_forced_while_a_django_tasks_success_is_sent_keeps_that_success(start_worker, subprocess_env, tmp_path):
    # The cancellation reached the runner while task_finished's receivers ran: the attempt became a
    # cancelled one, its job went back to the queue, and the Task would have run again.
    switch = tmp_path / "switch"
    worker = start_worker(env={**subprocess_env, "TEST_SAQ": json.dumps({"SHUTDOWN_GRACE_PERIOD": 60})})
    worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
    result = backend_tasks.returns_then_its_receiver_waits.enqueue(str(switch), "forced send")
    wait_until(lambda: notes("forced send") == ["forced send receiving"], message="the receiver to run")
    worker.signal(signal.SIGTERM)
    worker.wait_for_output("Send again to force")
    time.sleep(1.2)  # a second signal within a second is the same request delivered twice
    worker.signal(signal.SIGTERM)
    worker.wait_for_output("SIGTERM again")  # the cancellation has reached the attempt, its receiver still runs
    switch.touch()
    assert worker.wait(30) == 0
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL and stored(result.id).attempts == 1
    # The forced stop ended the worker's wait for the receiver, not the receiver: the process waits for its thread.
    assert notes("forced send") == ["forced send receiving", "forced send received SUCCESSFUL"]


@pytest.mark.parametrize("task", ["returns_then_its_receiver_waits", "fails_then_its_receiver_waits"])
def test_a_stops_grace_period_leaves_the_receivers_of_a_written_outcome_to_finish(
    start_worker, subprocess_env, tmp_path, task
):
    # Its end cancelled the slot as a running attempt's: a failure's task_finished receivers were cut off, its
    # after_process hooks skipped, and the log said the job went back to its queue (it had been written).
    switch = tmp_path / "switch"
    worker = start_worker(env={**subprocess_env, "TEST_SAQ": json.dumps({"SHUTDOWN_GRACE_PERIOD": 1})})
    worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
    result = getattr(backend_tasks, task).enqueue(str(switch), task)
    wait_until(lambda: notes(task) == [f"{task} receiving"], message="the receiver to run")
    worker.signal(signal.SIGTERM)
    worker.wait_for_output("whose outcome is written still run their outcome callbacks")
    switch.touch()
    assert worker.wait(30) == 0
    result.refresh()
    # The failure has retries left (the site's default options): READY, to run again after the stop.
    status = TaskResultStatus.SUCCESSFUL if task.startswith("returns") else TaskResultStatus.READY
    assert result.status == status and stored(result.id).attempts == 1
    assert notes(task) == [f"{task} receiving", f"{task} received {status}"]
    assert "still running at the end of the" not in worker.output
