"""``runworker --burst`` (and ``run_jobs``, which runs one) ends as soon as nothing is left, having taken
what the outbox held and what its own jobs queued meanwhile. On a redis-server of the test's own, so that
``MONITOR`` sees this worker's commands and no one else's."""

import asyncio
import logging
import subprocess
import threading
import time

import pytest
import redis
from asgiref.sync import sync_to_async
from django.db import transaction
from saq.job import Status

from tasks_app import enqueue, enqueue_on_commit
from tasks_app.enqueueing import outbox
from tasks_app.enqueueing.building import build_job
from tasks_app.models import OutboxEntry
from tasks_app.process.runner import WorkerOptions, run_workers
from tests.queue_state import count, stored
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
    later = enqueue("add_note", text="in an hour", delay=3600)  # beyond the 5 s lookahead: left, not waited for
    with Monitor(own_redis, tmp_path / "empty.log") as empty:
        run_burst("--concurrency", "4")
    assert stored(later.key).status == Status.QUEUED
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


# --- the burst workers of one process (one per queue) end together -----------------------------------


def run_group(queues: list[str], concurrency: int = 2, max_jobs: int | None = None, during=None) -> dict:
    """``run_workers`` with a burst worker per queue, as ``runworker --burst`` runs them; fails the test if
    they have not all ended within 10 s (they are stopped then, as SIGTERM does). Returns what ``during(box)``,
    run alongside, put in the box; ``box["workers"]`` are the workers."""
    box: dict = {}
    options = [
        WorkerOptions(queue=name, concurrency=concurrency, burst=True, max_burst_jobs=max_jobs) for name in queues
    ]

    async def main() -> bool:
        task = asyncio.create_task(run_workers(options, on_ready=lambda workers: box.update(workers=workers)))
        if during is not None:
            await during(box)
        done, _ = await asyncio.wait({task}, timeout=10)
        if done:
            task.result()
            return True
        box["running"] = [worker.queue.name for worker in box["workers"] if not worker.event.is_set()]
        for worker in box["workers"]:
            worker.event.set()
        await asyncio.wait_for(task, 30)
        return False

    assert asyncio.run(main()), f"the burst did not end: {box['running']} still running"
    return box


@pytest.fixture
def two_queues(own_redis, settings):
    settings.SAQ = {**settings.SAQ, "QUEUES": {"default": {"URL": own_redis.url}, "other": {"URL": own_redis.url}}}
    return own_redis


def test_a_worker_that_reached_max_jobs_does_not_hold_the_others_back(two_queues):
    for _ in range(3):
        enqueue("noop")
    run_group(["default", "other"], concurrency=1, max_jobs=1)
    assert count("queued") == 2  # --max-jobs 1: one ran, two are left for the next worker


def test_an_outbox_row_for_another_queue_written_while_jobs_run_is_run_before_the_burst_ends(two_queues, settings):
    # The periodic drain is a minute away: only the last look, once the running job has ended, delivers the
    # row (as a web process whose own delivery failed leaves it), onto a queue whose worker has nothing yet.
    settings.SAQ = {**settings.SAQ, "TIMERS": {**settings.SAQ["TIMERS"], "outbox": 60}}
    enqueue("sleep_then_note", seconds=0.6, text="running")  # notes "running started", then "... finished"

    async def during(box) -> None:
        await asyncio.sleep(0.2)
        await sync_to_async(outbox.record)(build_job("add_note", {"text": "late row"}, queue="other"))

    run_group(["default", "other"], during=during)
    assert Note.objects.filter(text="late row").exists() and not OutboxEntry.objects.exists()


def test_a_sibling_queues_redis_lost_mid_burst_ends_the_burst_with_one_line(own_redis, settings, tmp_path, caplog):
    (tmp_path / "other").mkdir()
    other = RedisServer(tmp_path / "other", persistent=False).start()
    settings.SAQ = {**settings.SAQ, "QUEUES": {"default": {"URL": own_redis.url}, "other": {"URL": other.url}}}
    job = enqueue("sleep_then_note", seconds=1.0, text="runs while the other Redis goes")

    started = Note.objects.filter(text="runs while the other Redis goes started").exists

    async def during(box) -> None:  # once the job runs (and so every check has passed)
        for _ in range(1000):
            if await sync_to_async(started)():
                break
            await asyncio.sleep(0.01)
        await asyncio.to_thread(other.stop)

    run_group(["default", "other"], during=during)
    assert stored(job.key).status == Status.COMPLETE
    assert any(record.getMessage().startswith("Lost Redis") for record in caplog.records)
    assert not [record for record in caplog.records if record.exc_info]  # said in a line, no traceback


def test_a_stop_while_the_slots_look_is_clean(two_queues, settings, caplog, monkeypatch):
    settings.SAQ = {**settings.SAQ, "TIMERS": {**settings.SAQ["TIMERS"], "outbox": 60}}
    drains: list[float] = []
    second = threading.Event()
    real = outbox._drain

    def slow_drain(*args):  # the periodic drain's first run and the last look's: the second takes a while
        drains.append(time.monotonic())
        if len(drains) > 1:
            second.set()
            time.sleep(1)
        return real(*args)

    async def during(box) -> None:
        await asyncio.to_thread(second.wait, 10)
        await asyncio.sleep(0.1)
        for worker in box["workers"]:
            worker.event.set()  # what SIGTERM does, while slots wait for the look

    monkeypatch.setattr(outbox, "_drain", slow_drain)
    run_group(["default", "other"], concurrency=3, during=during)
    assert second.is_set()
    # SAQ read each cancelled slot's result: one ERROR traceback per idle slot, on a clean stop.
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []


def test_a_slot_that_looked_early_looks_again_before_its_worker_ends(two_queues, settings):
    # The running job waits in the outbox (Redis refused it at commit): "other"'s slot finds nothing, looks,
    # and that look (or the periodic drain, which the look then waits for) delivers the job onto "default".
    # While it runs, a row for "other" is written: "other" must look again once the job has ended.
    queues = settings.SAQ["QUEUES"]
    settings.SAQ = {**settings.SAQ, "QUEUES": {**queues, "default": {"URL": "redis://127.0.0.1:1/0"}}}
    with transaction.atomic():
        enqueue_on_commit("sleep_then_note", seconds=0.6, text="from the outbox")
    settings.SAQ = {**settings.SAQ, "QUEUES": queues, "TIMERS": {**settings.SAQ["TIMERS"], "outbox": 60}}
    started = Note.objects.filter(text="from the outbox started").exists

    async def during(box) -> None:
        for _ in range(1000):
            if await sync_to_async(started)():
                break
            await asyncio.sleep(0.01)
        await sync_to_async(outbox.record)(build_job("add_note", {"text": "row for other"}, queue="other"))

    run_group(["default", "other"], concurrency=1, during=during)
    assert Note.objects.filter(text="row for other").exists() and not OutboxEntry.objects.exists()
