"""What an operator meets: SIGHUP (a closed terminal or ssh session, ``ExecReload=kill -HUP``) stops a
worker as SIGTERM does, and ``runworker --check`` judges live workers on Redis's clock, not the probe's,
and says when the database does not answer rather than waiting for it for ever."""

import json
import signal
import socket
import time

import pytest
from saq.job import Status

from tasks_app import enqueue
from tasks_app.process.runner import DATABASE_CHECK_S
from tests.queue_state import live_workers, stored
from tests.redis_server import RedisServer
from tests.sampleapp.models import Note

from .engine.redis_clock import skewed_env
from .helpers import manage, on_port, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_sighup_is_a_clean_stop_that_lets_the_in_flight_job_finish(start_worker, redis_db):
    worker = start_worker()
    worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
    enqueue("sleep_then_note", seconds=2, text="hangup")
    wait_until(lambda: Note.objects.filter(text="hangup started").exists(), message="the job to start")
    worker.signal(signal.SIGHUP)
    assert worker.wait(20) == 0
    assert Note.objects.filter(text="hangup finished").exists()
    assert "SIGHUP: stopping" in worker.output
    assert live_workers() == 0


def test_sighup_stops_a_supervisor_and_its_children_cleanly(start_worker, redis_db):
    supervisor = start_worker("--workers", "2")
    wait_until(lambda: live_workers() == 2, message="two workers")
    supervisor.signal(signal.SIGHUP)
    assert supervisor.wait(20) == 0
    assert live_workers() == 0


@pytest.mark.parametrize("offset", ["+30s", "-30s"])
def test_the_health_check_counts_live_workers_on_redis_clock(start_worker, subprocess_env, offset):
    start_worker().wait_for_output("SIGTERM/SIGINT for a clean stop")
    wait_until(lambda: live_workers() == 1, message="the worker to register")
    check = manage("runworker", "--check", env=skewed_env(offset, subprocess_env))
    assert check.returncode == 0, check.stdout + check.stderr
    assert "1 worker" in check.stdout


def test_the_health_check_says_so_when_the_database_accepts_connections_and_never_answers(subprocess_env):
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (the kernel's backlog), never answers
    try:
        env = on_port(subprocess_env, silent.getsockname()[1])
        started = time.monotonic()
        check = manage("runworker", "--check", env=env, timeout=60)
        assert time.monotonic() - started < 30
    finally:
        silent.close()
    assert check.returncode == 2, check.stdout + check.stderr
    assert f"no answer within {DATABASE_CHECK_S} s" in check.stderr
    assert "TEST_DATABASE_URL" in check.stderr  # the setting to fix, named


def test_a_sync_job_that_returns_after_the_grace_period_is_recorded_complete_not_run_again(
    start_worker, subprocess_env
):
    # Its thread cannot be stopped: the worker waits for it, and what it gave is its outcome.
    env = {**subprocess_env, "TEST_SAQ": json.dumps({"SHUTDOWN_GRACE_PERIOD": 1})}
    worker = start_worker(env=env)
    worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
    key = enqueue("sync_sleep_then_note", seconds=3, text="sync at stop").key
    wait_until(lambda: Note.objects.filter(text="sync at stop started").exists(), message="the job to start")
    worker.signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    job = stored(key)
    assert (job.status, job.attempts, job.result) == (Status.COMPLETE, 1, "sync at stop")
    assert "outcome=complete" in worker.output and "outcome=requeued" not in worker.output
    assert Note.objects.filter(text="sync at stop finished").count() == 1


def test_a_job_in_its_grace_period_keeps_its_heartbeat_and_is_not_run_again_elsewhere(start_worker, subprocess_env):
    # Silent from the signal on, it was swept (heartbeat 2 s) and run by the other worker beside itself.
    env = {**subprocess_env, "TEST_SAQ": json.dumps({"SHUTDOWN_GRACE_PERIOD": 30, "TIMERS": {"sweep": 1}})}
    stopping = start_worker(env=env)
    stopping.wait_for_output("SIGTERM/SIGINT for a clean stop")
    key = enqueue("sleep_then_note", seconds=6, text="in grace", heartbeat=2).key
    wait_until(lambda: Note.objects.filter(text="in grace started").exists(), message="the job to start")
    other = start_worker(env=env)
    other.wait_for_output("SIGTERM/SIGINT for a clean stop")
    stopping.signal(signal.SIGTERM)
    assert stopping.wait(30) == 0
    job = stored(key)
    assert (job.status, job.attempts) == (Status.COMPLETE, 1)
    assert Note.objects.filter(text="in grace started").count() == 1
    assert f"key={key}" not in other.output


def test_a_forced_stop_with_redis_down_says_the_jobs_stay_active_not_that_they_were_put_back(
    start_worker, subprocess_env, tmp_path
):
    server = RedisServer(tmp_path).start()
    try:
        env = {**subprocess_env, "TEST_REDIS_URL": server.url, "TEST_SAQ": json.dumps({"SHUTDOWN_GRACE_PERIOD": 60})}
        worker = start_worker(env=env)
        worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
        server.client().rpush("probe", "x")  # the test's own Redis answers
        submitted = manage("enqueue", "sleep_then_note", "seconds=60", "text=redis gone", env=env)
        assert submitted.returncode == 0, submitted.stderr
        wait_until(lambda: Note.objects.filter(text="redis gone started").exists(), message="the job to start")
        server.stop()
        worker.wait_for_output("Lost Redis")  # its heartbeat found out
        worker.signal(signal.SIGTERM)
        worker.wait_for_output("Send again to force")
        time.sleep(1.2)  # a second signal within a second is the same request delivered twice
        worker.signal(signal.SIGTERM)
        assert worker.wait(20) == 1  # not a clean stop: a job was left active
        assert "Redis is down, so in-flight jobs cannot be put back" in worker.output
        assert "re-queueing in-flight jobs" not in worker.output
        assert "outcome (requeued) was not written: Redis is down and the worker is stopping" in worker.output
    finally:
        server.stop()


def test_a_graceful_stop_with_redis_down_exits_once_the_grace_period_is_over(start_worker, subprocess_env, tmp_path):
    server = RedisServer(tmp_path).start()
    try:
        env = {**subprocess_env, "TEST_REDIS_URL": server.url, "TEST_SAQ": json.dumps({"SHUTDOWN_GRACE_PERIOD": 2})}
        worker = start_worker(env=env)
        worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
        submitted = manage("enqueue", "sleep_then_note", "seconds=60", "text=redis gone, graceful", env=env)
        assert submitted.returncode == 0, submitted.stderr
        wait_until(lambda: Note.objects.filter(text="redis gone, graceful started").exists(), message="the start")
        server.stop()
        started = time.monotonic()
        worker.signal(signal.SIGTERM)
        assert worker.wait(30) == 1  # its re-queue once waited for Redis for ever
        assert time.monotonic() - started < 20
        assert "outcome (requeued) was not written: Redis is down and the worker is stopping" in worker.output
        assert "1 job(s) were left active: Redis was down as the worker stopped, so their outcome" in worker.output
    finally:
        server.stop()


@pytest.mark.parametrize("mode", [("--workers", "2"), ("--reload",)])
def test_a_supervisor_whose_worker_stopped_with_a_job_left_active_exits_1_too(
    start_worker, subprocess_env, tmp_path, mode
):
    # The worker said so and exited 1; its supervisor exited 0, as from a clean stop.
    server = RedisServer(tmp_path).start()
    try:
        env = {**subprocess_env, "TEST_REDIS_URL": server.url, "TEST_SAQ": json.dumps({"SHUTDOWN_GRACE_PERIOD": 2})}
        supervisor = start_worker(*mode, env=env)
        supervisor.wait_for_output("SIGTERM/SIGINT for a clean stop")
        submitted = manage("enqueue", "sleep_then_note", "seconds=60", "text=supervised, redis gone", env=env)
        assert submitted.returncode == 0, submitted.stderr
        wait_until(lambda: Note.objects.filter(text="supervised, redis gone started").exists(), message="the start")
        server.stop()
        supervisor.signal(signal.SIGTERM)
        assert supervisor.wait(40) == 1
        assert "1 job(s) were left active: Redis was down as the worker stopped, so their outcome" in supervisor.output
        assert "stopped with exit code 1 (see its lines above)" in supervisor.output
    finally:
        server.stop()
