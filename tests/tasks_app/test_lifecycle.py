"""runworker as a real process: signals, crashes, supervision, Redis outages, health checks."""

import asyncio
import json
import os
import re
import signal
import time

import pytest
import redis
from saq.job import Status

from tasks_app.engine import records
from tasks_app.enqueueing.building import build_job
from tests.queue_state import listed, live_workers, stored
from tests.redis_server import RedisServer
from tests.sampleapp.models import Note

from .helpers import manage, queue_opener, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def env_with(subprocess_env: dict, **saq) -> dict:
    return {**subprocess_env, "TEST_SAQ": json.dumps(saq)}


def enqueue(env: dict, *args: str) -> str:
    result = manage("enqueue", *args, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[0]


def submit_all(url: str, task: str, calls: list[dict], **options) -> list[str]:
    """Enqueue one job of ``task`` per call on the queue at ``url``, in one round trip; their keys."""

    async def go() -> list[str]:
        async with queue_opener(url)() as queue:
            jobs = [build_job(task, kwargs, **options).job for kwargs in calls]
            return [job.key for job, _ in await records.submit_many(queue, jobs)]

    return asyncio.run(go())


def notes(*texts: str) -> bool:
    return Note.objects.filter(text__in=texts).count() == len(texts)


def test_idle_worker_exits_within_two_seconds_of_sigterm(start_worker, redis_db):
    worker = start_worker()
    worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
    wait_until(lambda: live_workers() == 1, message="the worker to register")
    started = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait(10) == 0
    assert time.monotonic() - started < 2.0
    assert live_workers() == 0  # gone from the dashboard at once


def test_sigterm_lets_the_in_flight_job_finish(start_worker, subprocess_env):
    worker = start_worker()
    worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
    enqueue(subprocess_env, "sleep_then_note", "seconds=2", "text=graceful")
    wait_until(lambda: notes("graceful started"), message="the job to start")
    worker.signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    assert notes("graceful finished")


def test_a_signal_delivered_twice_at_once_is_still_a_graceful_stop(start_worker, subprocess_env):
    # `uv run` forwards the SIGTERM its child also receives; systemd signals the whole cgroup.
    worker = start_worker()
    worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
    enqueue(subprocess_env, "sleep_then_note", "seconds=2", "text=twice")
    wait_until(lambda: notes("twice started"), message="the job to start")
    worker.signal(signal.SIGTERM)
    worker.signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    assert notes("twice finished")
    assert "exiting now" not in worker.output


def test_job_still_running_after_the_grace_period_is_requeued(start_worker, subprocess_env, redis_db):
    env = env_with(subprocess_env, SHUTDOWN_GRACE_PERIOD=1)
    worker = start_worker(env=env)
    worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
    key = enqueue(env, "sleep_then_note", "seconds=30", "text=too long")
    wait_until(lambda: notes("too long started"), message="the job to start")
    worker.signal(signal.SIGTERM)
    assert worker.wait(10) == 0
    job = stored(key)
    assert job.status == Status.QUEUED and job.error.startswith("re-queued: its worker stopped")
    assert job.attempts == 0  # a clean stop does not use up an attempt
    # Back in the queue, due within the first retry delay, for the next live worker.
    assert listed(key, "queued")  # at the head of the queue, for the next live worker


def test_second_signal_forces_exit_and_requeues(start_worker, subprocess_env, redis_db):
    worker = start_worker()
    worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
    key = enqueue(subprocess_env, "sleep_then_note", "seconds=60", "text=forced")
    wait_until(lambda: notes("forced started"), message="the job to start")
    worker.signal(signal.SIGTERM)
    worker.wait_for_output("Send again to force")
    time.sleep(1.2)  # a second signal within a second is the same request delivered twice
    started = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait(10) == 0
    assert time.monotonic() - started < 5
    assert stored(key).status == Status.QUEUED


def test_sigkilled_workers_job_runs_again_on_the_next_worker(start_worker, subprocess_env):
    env = env_with(subprocess_env, DEFAULT_JOB_OPTIONS={"heartbeat": 2})
    doomed = start_worker(env=env)
    doomed.wait_for_output("SIGTERM/SIGINT for a clean stop")
    enqueue(env, "long_job", "seconds=3", "text=survivor")
    wait_until(lambda: notes("survivor started"), message="the job to start")
    doomed.signal(signal.SIGKILL)
    doomed.wait(5)
    killed_at = time.monotonic()
    start_worker(env=env)
    wait_until(lambda: notes("survivor finished"), timeout=30, message="the job to run again")
    # heartbeat (2 s) + sweep interval (1 s) + orphan recheck (1 s) + the job's own 3 s, with slack
    assert time.monotonic() - killed_at < 15
    assert Note.objects.filter(text="survivor started").count() == 2


def test_workers_2_stops_every_child_on_sigterm(start_worker):
    supervisor = start_worker("--workers", "2")
    wait_until(lambda: len(re.findall(r"worker \d started \(pid (\d+)\)", supervisor.output)) == 2)
    children = [int(pid) for pid in re.findall(r"started \(pid (\d+)\)", supervisor.output)]
    wait_until(lambda: supervisor.output.count("SIGTERM/SIGINT for a clean stop") == 2, message="both banners")
    supervisor.signal(signal.SIGTERM)
    assert supervisor.wait(20) == 0
    for pid in children:
        assert not os.path.exists(f"/proc/{pid}"), f"child {pid} was left behind"


def test_a_dead_child_is_restarted(start_worker):
    supervisor = start_worker("--workers", "2")
    wait_until(lambda: supervisor.output.count("SIGTERM/SIGINT for a clean stop") == 2, message="both banners")
    first = int(re.findall(r"worker 0 started \(pid (\d+)\)", supervisor.output)[0])
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: len(re.findall(r"worker 0 started", supervisor.output)) == 2, message="a restart")
    supervisor.signal(signal.SIGTERM)
    assert supervisor.wait(20) == 0


def test_unreachable_redis_is_a_clear_message(subprocess_env):
    result = manage(
        "runworker", "--burst", "--skip-checks", env={**subprocess_env, "TEST_REDIS_URL": "redis://127.0.0.1:1/0"}
    )
    assert result.returncode != 0
    assert "Cannot reach Redis" in result.stderr and "REDIS_URL" in result.stderr
    assert ".. " not in result.stderr  # one period after the reason
    assert 'fix SAQ["QUEUES"]["default"]["URL"] (set from the environment variable TEST_REDIS_URL).' in result.stderr
    assert "Traceback" not in result.stderr


def test_redis_restart_loses_no_queued_job(start_worker, subprocess_env, tmp_path):
    server = RedisServer(tmp_path).start()
    try:
        env = env_with({**subprocess_env, "TEST_REDIS_URL": server.url}, DEFAULT_JOB_OPTIONS={"heartbeat": 2})
        worker = start_worker("--concurrency", "2", env=env)
        worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
        texts = [f"restart {i}" for i in range(12)]
        # In one round trip: twelve `manage.py enqueue` runs took a minute on a loaded machine, by when
        # every job had run and the restart found nothing queued.
        submit_all(server.url, "long_job", [{"seconds": 0.5, "text": text} for text in texts], heartbeat=2)
        wait_until(lambda: Note.objects.filter(text__endswith="finished").exists(), message="a first job")
        server.stop()
        time.sleep(1.5)  # the worker runs on without Redis for a while
        # Each job taken before the stop has said so by now: the others were queued when Redis went down.
        taken = Note.objects.filter(text__in=[f"{text} started" for text in texts]).count()
        assert taken < len(texts), "every job was taken before Redis stopped: none was queued through the restart"
        server.start()
        wait_until(lambda: notes(*(f"{t} finished" for t in texts)), timeout=60, message="every job to finish")
        assert worker.process.poll() is None  # it reconnected and carried on
        assert "Lost Redis" in worker.output
    finally:
        server.stop()


def test_health_check_exit_codes(start_worker, subprocess_env):
    assert manage("runworker", "--check", env=subprocess_env).returncode == 1  # no worker yet
    worker = start_worker()
    worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
    wait_until(lambda: manage("runworker", "--check", env=subprocess_env).returncode == 0, message="a healthy check")
    down = manage("runworker", "--check", env={**subprocess_env, "TEST_REDIS_URL": "redis://127.0.0.1:1/0"})
    assert down.returncode == 2 and "Redis unreachable" in down.stderr
    assert 'check SAQ["QUEUES"]["default"]["URL"] (set from the environment variable TEST_REDIS_URL)' in down.stderr


def test_new_apps_tasks_py_is_picked_up_with_no_other_change(subprocess_env, tmp_path):
    app = tmp_path / "brand_new_app"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "tasks.py").write_text(
        "from pathlib import Path\n"
        "from tasks_app import task\n\n"
        "@task\n"
        "def brand_new_task(ctx, path: str) -> str:\n"
        "    Path(path).write_text('ran')\n"
        "    return 'ok'\n"
    )
    (tmp_path / "brand_new_settings.py").write_text(
        "from tests.settings import *  # noqa\nINSTALLED_APPS = [*INSTALLED_APPS, 'brand_new_app']\n"
    )
    env = {**subprocess_env, "PYTHONPATH": str(tmp_path), "DJANGO_SETTINGS_MODULE": "brand_new_settings"}
    marker = tmp_path / "marker"
    assert manage("enqueue", "brand_new_task", f"path={marker}", env=env).returncode == 0
    result = manage("runworker", "--burst", env=env)
    assert result.returncode == 0, result.stderr
    assert marker.read_text() == "ran"
    assert "brand_new_task" in result.stdout  # listed in the startup banner


def test_redis_db_is_the_tests_own(redis_db):
    assert redis_db.connection_pool.connection_kwargs["db"] != 0
    assert isinstance(redis_db, redis.Redis)


# --- outages: fail fast or wait quietly ------------------------------------------------------------


def test_workers_2_with_redis_unreachable_exits_2_with_the_single_mode_message(subprocess_env):
    env = {**subprocess_env, "TEST_REDIS_URL": "redis://:hunter2@127.0.0.1:1/0"}
    result = manage("runworker", "--workers", "2", "--skip-checks", env=env, timeout=30)
    assert result.returncode == 2
    assert "Cannot reach Redis for queue 'default' at redis://:***@127.0.0.1:1/0" in result.stderr
    assert "started (pid" not in result.stderr + result.stdout  # no child was started, let alone restarted
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr


def test_a_child_that_keeps_dying_at_start_makes_the_supervisor_give_up():
    import sys

    from tasks_app.exceptions import WorkersGaveUp
    from tasks_app.process import supervisor

    argv = [sys.executable, "-c", "import sys; sys.exit(1)"]
    started = time.monotonic()
    with pytest.raises(WorkersGaveUp) as gave_up:
        supervisor.Supervisor([argv], grace_period=1, first_backoff=0.05).run()
    assert "exited within 10s of starting 5 times in a row (last exit code 1); giving up" in str(gave_up.value)
    assert gave_up.value.code == 1
    assert time.monotonic() - started < 10


def test_database_unreachable_at_start_exits_2_naming_the_setting(subprocess_env):
    env = {**subprocess_env, "TEST_DATABASE_URL": "postgres://postgres:hunter2@127.0.0.1:1/nowhere"}
    result = manage("runworker", "--burst", "--skip-checks", env=env, timeout=30)
    assert result.returncode == 2
    assert "Cannot reach the database 'default' (postgresql nowhere at 127.0.0.1:1)" in result.stderr
    assert "DATABASE_URL" in result.stderr and "hunter2" not in result.stderr
    assert (
        'Start it, or fix DATABASES["default"] (set from the environment variable TEST_DATABASE_URL).' in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert "SAQ worker, pid" not in result.stdout  # it never claimed to be ready
    check = manage("runworker", "--check", env=env, timeout=30)
    assert check.returncode == 2 and "Cannot reach the database 'default'" in check.stderr


def test_a_redis_outage_is_one_line_when_it_starts_and_one_when_it_ends(start_worker, subprocess_env, tmp_path):
    server = RedisServer(tmp_path).start()
    try:
        env = {**subprocess_env, "TEST_REDIS_URL": server.url}
        worker = start_worker("-v", "1", env=env)
        worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
        server.stop()
        time.sleep(4)  # several dequeues, heartbeats, sweeps and outbox drains fail meanwhile
        server.start()
        worker.wait_for_output("Redis is back after")
        worker.signal(signal.SIGTERM)
        assert worker.wait(15) == 0
    finally:
        server.stop()
    assert worker.output.count("Lost Redis") == 1
    assert worker.output.count("Redis is back after") == 1
    assert "Traceback" not in worker.output


# --- dev mode: --reload stops cleanly -----------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_reload_mode_stops_cleanly_on_a_signal(start_worker, subprocess_env, signum):
    worker = start_worker("--reload", "--skip-checks")
    worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
    enqueue(subprocess_env, "sleep_then_note", "seconds=2", "text=dev mode")
    wait_until(lambda: notes("dev mode started"), message="the job to start")
    worker.signal(signum)
    assert worker.wait(30) == 0
    assert notes("dev mode finished")  # the job in flight finished within the grace period
    assert "stopping; in-flight jobs get" in worker.output


def test_reload_on_a_code_change_lets_the_job_finish_then_restarts(start_worker, subprocess_env, tmp_path):
    module = tmp_path / "reload_probe.py"
    module.write_text("VALUE = 1\n")
    (tmp_path / "reload_settings.py").write_text("from tests.settings import *  # noqa\nimport reload_probe  # noqa\n")
    env = {**subprocess_env, "PYTHONPATH": str(tmp_path), "DJANGO_SETTINGS_MODULE": "reload_settings"}
    worker = start_worker("--reload", "--skip-checks", env=env)
    worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
    enqueue(env, "sleep_then_note", "seconds=2", "text=code change")
    wait_until(lambda: notes("code change started"), message="the job to start")
    time.sleep(1.1)  # a new modification time
    module.write_text("VALUE = 2\n")
    worker.wait_for_output("reload_probe.py changed: restarting 1 worker(s)")
    wait_until(lambda: worker.output.count("SIGTERM/SIGINT for a clean stop") == 2, message="the new worker")
    assert notes("code change finished")
    assert Note.objects.filter(text="code change started").count() == 1  # it ran once, to the end
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0


# --- secrets stay secret -------------------------------------------------------------------------------


def test_commands_never_print_the_redis_password(subprocess_env):
    env = {**subprocess_env, "TEST_REDIS_URL": "redis://:hunter2@127.0.0.1:1/0?password=hunter3"}
    outputs = [
        manage("runworker", "--check", env=env),
        manage("runworker", "--burst", "--skip-checks", env=env),
        manage("enqueue", "noop", env=env),
    ]
    for result in outputs:
        assert result.returncode == 2, result.stderr
        text = result.stdout + result.stderr
        assert "hunter2" not in text and "hunter3" not in text
        assert ":***@127.0.0.1:1" in text


@pytest.mark.parametrize("given", ["wrong-pw-hunter4", None])
def test_a_refused_password_is_named_by_every_command_not_called_unreachable(subprocess_env, tmp_path, given):
    # A Redis that answers, and refuses: a wrong password, or none where one is needed.
    server = RedisServer(tmp_path, persistent=False).start()
    try:
        server.client().config_set("requirepass", "right-pw-hunter5")
        auth = f":{given}@" if given else ""
        env = {**subprocess_env, "TEST_REDIS_URL": f"redis://{auth}127.0.0.1:{server.port}/0"}
        for command in (["enqueue", "noop"], ["pausequeue", "default"], ["runworker", "--check"]):
            result = manage(*command, env=env)
            assert result.returncode == 2, (command, result.stderr)
            text = result.stdout + result.stderr
            assert "Redis refused the user name or password; fix " in text, (command, text)
            assert "Cannot reach Redis" not in text and "Traceback" not in text, (command, text)
            assert "hunter4" not in text and "hunter5" not in text
    finally:
        server.stop()
