"""``runworker --burst`` (and ``run_jobs``, which runs one) ends as soon as nothing is left, having taken
what the outbox held and what its own jobs queued meanwhile. On a redis-server of the test's own, so that
``MONITOR`` sees this worker's commands and no one else's."""

import subprocess

import pytest
import redis
from django.db import transaction
from saq.job import Status

from tasks_app import enqueue, enqueue_on_commit
from tasks_app.models import OutboxEntry
from tests.queue_state import stored
from tests.redis_server import RedisServer
from tests.sampleapp.models import Note

from .helpers import run_burst, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def own_redis(tmp_path, settings):
    server = RedisServer(tmp_path, persistent=False).start()
    settings.SAQ = {**settings.SAQ, "QUEUES": {"default": {"URL": server.url}}}
    yield server
    server.stop()


class Monitor:
    """The commands a redis-server runs while this is open (``redis-cli MONITOR``, one line each)."""

    def __init__(self, server: RedisServer, path) -> None:
        self.server, self.path = server, path

    def __enter__(self) -> "Monitor":
        self.out = open(self.path, "w")  # redis-cli writes it until __exit__
        argv = ["redis-cli", "-p", str(self.server.port), "monitor"]
        self.process = subprocess.Popen(argv, stdout=self.out, stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.server.port)
        wait_until(lambda: client.echo("monitor-on") and "monitor-on" in self.path.read_text(), timeout=10)
        return self

    def __exit__(self, *exc) -> None:
        redis.Redis(port=self.server.port).echo("monitor-off")  # everything before it has been written
        wait_until(lambda: "monitor-off" in self.path.read_text(), timeout=10, message="MONITOR's last line")
        self.process.terminate()
        self.process.wait(10)
        self.out.close()
        self.lines = self.path.read_text().splitlines()

    def blocking_takes(self) -> list[str]:
        return [line for line in self.lines if '"blmove" "saq:default:queued"' in line.lower()]


def test_a_burst_worker_that_finds_nothing_ends_without_waiting_for_work(own_redis, tmp_path):
    with Monitor(own_redis, tmp_path / "empty.log") as empty:
        run_burst("--concurrency", "4")
    job = enqueue("add_note", text="one job")
    with Monitor(own_redis, tmp_path / "one.log") as one:
        run_burst("--concurrency", "4")
    assert stored(job.key).status == Status.COMPLETE
    # Each of the four slots found nothing, looked once more (a sweep, one outbox drain) and ended: not one
    # waited on the queued list for work to come (0.5 s each, twice, before).
    assert empty.blocking_takes() == [] and one.blocking_takes() == []
    assert any('"EVALSHA"' in line for line in empty.lines)  # it did take, without blocking


def test_a_burst_worker_runs_what_the_outbox_holds(own_redis, settings):
    # Redis refused the job at commit: the row waits in the outbox, which the burst worker drains before
    # it ends, and the job it delivers is run by the same burst.
    settings.SAQ = {**settings.SAQ, "QUEUES": {"default": {"URL": "redis://127.0.0.1:1/0"}}}
    with transaction.atomic():
        enqueue_on_commit("add_note", text="kept in the outbox")
    assert OutboxEntry.objects.count() == 1
    settings.SAQ = {**settings.SAQ, "QUEUES": {"default": {"URL": own_redis.url}}}
    run_burst("--concurrency", "4")
    assert Note.objects.filter(text="kept in the outbox").exists() and not OutboxEntry.objects.exists()


def test_a_burst_worker_takes_what_its_running_jobs_queue_after_the_other_slots_found_nothing(own_redis):
    # Four slots, one job: three find nothing at once, while the fourth runs a job that fails and is retried
    # 0.2 s later. The burst ends only once the retry has run.
    flaky = enqueue("flaky", fail_times=1)
    run_burst("--concurrency", "4")
    done = stored(flaky.key)
    assert (done.status, done.attempts, done.result) == (Status.COMPLETE, 2, {"attempt": 2}), done
