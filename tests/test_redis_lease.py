"""The test run's Redis database under pytest-xdist: each worker process leases its own.

Each case runs tests/redis_lease.py in a fresh interpreter with the environment an xdist worker,
or a subprocess a test starts, would inherit: this process's own lease must stay as it is.
"""

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from .redis_lease import LEASED_FOR

ROOT = Path(__file__).resolve().parent.parent
MINE = settings.SAQ["QUEUES"]["default"]["URL"]
SERVER = "redis://127.0.0.1:6379"


def outside_this_run() -> dict[str, str]:
    """This environment without what marks it as this run's (its lease, its xdist worker)."""
    return {k: v for k, v in os.environ.items() if k not in {"TEST_REDIS_URL", LEASED_FOR} and "XDIST" not in k}


def lease_in_a_new_process(**env: str) -> str:
    clean = outside_this_run()
    code = f"from tests.redis_lease import leased_redis_url; print(leased_redis_url({SERVER!r}))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_an_xdist_worker_leases_a_database_of_its_own_not_its_controllers():
    controllers = "redis://127.0.0.1:6379/15"
    url = lease_in_a_new_process(TEST_REDIS_URL=controllers, **{LEASED_FOR: ""}, PYTEST_XDIST_WORKER="gw1")
    assert url.startswith(SERVER + "/") and url not in {controllers, MINE}


def test_a_subprocess_of_a_worker_keeps_that_workers_database():
    url = lease_in_a_new_process(TEST_REDIS_URL=MINE, **{LEASED_FOR: "gw1"}, PYTEST_XDIST_WORKER="gw1")
    assert url == MINE


def test_a_database_set_by_hand_is_used_as_it_is():
    assert lease_in_a_new_process(TEST_REDIS_URL="redis://127.0.0.1:6379/15") == "redis://127.0.0.1:6379/15"


def test_a_database_set_by_hand_with_several_workers_is_refused_naming_the_fix():
    env = outside_this_run()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider", "tests/test_module_sizes.py"],
        cwd=ROOT,
        env={**env, "TEST_REDIS_URL": "redis://127.0.0.1:6379/15"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 4  # pytest's usage error
    assert "TEST_REDIS_URL names one Redis database" in result.stderr and "run with -n 0" in result.stderr
    assert "Traceback" not in result.stderr
