"""An evicting Redis (maxmemory-policy other than noeviction) is caught before it loses jobs."""

import asyncio

import pytest
import redis.asyncio
from django.test import override_settings
from django.urls import reverse

from tasks_app.engine import memory_policy
from tests.redis_server import RedisServer

from .helpers import manage


@pytest.fixture
def evicting(tmp_path):
    """A redis-server of the test's own that evicts any key under memory pressure, as a cache would."""
    server = RedisServer(tmp_path, persistent=False).start()
    client = server.client()
    client.config_set("maxmemory-policy", "allkeys-lru")
    client.close()
    yield server
    server.stop()


def test_a_worker_refuses_to_start_on_an_evicting_redis_with_debug_off(subprocess_env, evicting):
    env = {**subprocess_env, "TEST_REDIS_URL": evicting.url, "DEBUG": "false"}
    result = manage("runworker", "--burst", env=env)
    assert result.returncode != 0
    assert "tasks_app.E013" in result.stderr and "maxmemory-policy allkeys-lru" in result.stderr
    assert "CONFIG SET maxmemory-policy noeviction" in result.stderr
    assert "Traceback" not in result.stderr


def test_with_debug_on_it_is_a_warning_and_the_worker_runs(subprocess_env, evicting):
    env = {**subprocess_env, "TEST_REDIS_URL": evicting.url, "DEBUG": "true"}
    result = manage("runworker", "--burst", env=env)
    assert result.returncode == 0, result.stderr
    assert "tasks_app.W004" in result.stderr and "allkeys-lru" in result.stderr


def test_runworker_check_says_so(subprocess_env, evicting):
    result = manage("runworker", "--check", env={**subprocess_env, "TEST_REDIS_URL": evicting.url})
    assert "maxmemory-policy allkeys-lru" in result.stdout + result.stderr


def test_the_dashboard_shows_a_banner(admin_client, settings, evicting):
    queues = {"default": {"URL": evicting.url}}
    with override_settings(SAQ={**settings.SAQ, "QUEUES": queues}):
        page = admin_client.get(reverse("admin:tasks_app_taskqueue_changelist"))
    assert page.status_code == 200
    assert "maxmemory-policy allkeys-lru" in page.content.decode() and "tq-eviction" in page.content.decode()


def test_an_acl_user_without_config_reads_the_policy_from_info_and_one_without_either_gets_unknown(evicting):
    admin = evicting.client()
    admin.execute_command("ACL", "SETUSER", "noconfig", "on", ">pw", "~*", "+@all", "-config")
    admin.execute_command("ACL", "SETUSER", "blind", "on", ">pw", "~*", "+@all", "-config", "-info")
    admin.close()

    async def policy(user: str) -> str:
        client = redis.asyncio.Redis(port=evicting.port, username=user, password="pw")
        try:
            return await memory_policy.read_policy(client)
        finally:
            await client.aclose()

    assert asyncio.run(policy("noconfig")) == "allkeys-lru"
    assert asyncio.run(policy("blind")) == memory_policy.UNKNOWN
    assert "is unknown" in memory_policy.problem(memory_policy.UNKNOWN, "here")
    assert memory_policy.problem("noeviction", "here") is None


def test_a_database_index_out_of_range_is_named_not_blamed_on_the_memory_policy(subprocess_env, evicting):
    url = evicting.url.rsplit("/", 1)[0] + "/99"  # the server has 16 databases
    result = manage("runworker", "--burst", env={**subprocess_env, "TEST_REDIS_URL": url, "DEBUG": "false"})
    assert result.returncode == 2, result.stderr
    assert "DB index is out of range" in result.stderr
    assert "E013" not in result.stderr and "maxmemory-policy" not in result.stderr
    assert "Traceback" not in result.stderr
