"""Hosts whose clocks disagree by minutes change nothing: every time is compared on Redis's clock.

Workers run as real ``runworker`` processes, one of them with its clock five minutes off (Debian's
libfaketime), beside one on this host's clock; the enqueuer is this test process, its clock moved
with time-machine. The job records' own times (``queued``, ``started``: stamped by Redis) say when
each job was due and when it ran.
"""

import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from saq.job import TERMINAL_STATUSES, Status

from tests.queue_state import stored
from tests.sampleapp.models import Note

from ..helpers import wait_until
from .redis_clock import skewed_env

pytestmark = pytest.mark.django_db(transaction=True)

# A worker the sweep took for dead would lose its 6 s job after 2 s.
HEARTBEAT = 2
TERMINAL = {status.value for status in TERMINAL_STATUSES}
OFFSETS = ["+300s", "-300s"]  # the skewed worker's clock, five minutes ahead or behind


def worker_env(subprocess_env: dict, offset: str | None = None) -> dict:
    return skewed_env(offset, base=subprocess_env) if offset else subprocess_env


def started(text: str) -> int:
    return Note.objects.filter(text=f"{text} started").count()


@pytest.mark.parametrize("offset", OFFSETS)
def test_no_live_job_is_swept_or_run_twice_when_a_workers_clock_is_off(start_worker, subprocess_env, offset):
    """Each worker runs a job for 3 heartbeats while the other sweeps every second: neither job is swept."""
    from tasks_app import enqueue

    skewed = start_worker("--concurrency", "1", env=worker_env(subprocess_env, offset))
    skewed.wait_for_output("SIGTERM/SIGINT for a clean stop")
    skewed_job = enqueue("sleep_then_note", seconds=6, text="on the skewed worker", heartbeat=HEARTBEAT)
    wait_until(lambda: started("on the skewed worker"), message="the skewed worker to start its job")
    normal = start_worker("--concurrency", "1", env=worker_env(subprocess_env))
    normal.wait_for_output("SIGTERM/SIGINT for a clean stop")
    normal_job = enqueue("sleep_then_note", seconds=6, text="on the normal worker", heartbeat=HEARTBEAT)
    for enqueued, text in ((skewed_job, "on the skewed worker"), (normal_job, "on the normal worker")):
        job = wait_until(lambda: (job := stored(enqueued.key)).status.value in TERMINAL and job, timeout=30)  # noqa: B023
        assert (job.status, job.attempts, started(text)) == (Status.COMPLETE, 1, 1), (text, job.error)
    assert "Swept job" not in skewed.output + normal.output


@pytest.mark.parametrize("offset", OFFSETS)
def test_a_delayed_job_runs_on_time_when_the_enqueuer_and_the_worker_disagree(start_worker, subprocess_env, offset):
    """The enqueuer's clock is five minutes off one way, the worker's the other way: ten minutes apart."""
    from tasks_app import enqueue

    worker = start_worker("--concurrency", "2", env=worker_env(subprocess_env, offset))
    worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
    # The worker is taking jobs (its start-up is over): what is measured below is the delay alone.
    enqueue("sleep_then_note", seconds=0, text="ready")
    wait_until(lambda: started("ready"), timeout=30, message="the worker to take its first job")
    enqueuer_offset = timedelta(seconds=-int(offset[:-1]))
    with time_machine.travel(datetime.now(UTC) + enqueuer_offset, tick=True):
        enqueued = enqueue("sleep_then_note", seconds=0, text="delayed", delay=3)
    enqueued_at = time.monotonic()
    wait_until(lambda: started("delayed"), timeout=20, message="the delayed job to start")
    observed = time.monotonic() - enqueued_at
    job = wait_until(lambda: (job := stored(enqueued.key)).status == Status.COMPLETE and job, message="its outcome")
    ran_after_ms = job.started - job.queued  # both on Redis's clock
    assert 3000 <= ran_after_ms <= 5000, ran_after_ms
    assert 2.9 <= observed <= 6, observed  # and as this host saw it: neither early nor minutes late
    assert (job.status, started("delayed")) == (Status.COMPLETE, 1)
