"""tasks_app.operations called as code calls it, below any UI: the sync twins and the async operations,
their audit, the commands that use them, and the one read of live workers."""

import asyncio
import logging

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import override_settings

from tasks_app import enqueue
from tasks_app import operations as ops
from tasks_app.engine import pausing
from tasks_app.enqueueing.connections import disconnect_all
from tasks_app.exceptions import ActionRefused
from tests import queue_state

from .helpers import wait_until


def test_pause_and_resume_are_audited_in_the_trail_and_the_log(redis_db, caplog):
    with caplog.at_level(logging.INFO, logger="tasks_app.operations"):
        assert ops.pause("default", by="ada") is None
        already = ops.pause("default", by="bob")  # stays ada's
        assert ops.resume("default", by="bob") is True
        assert ops.resume("default", by="bob") is False
    assert already.by == "ada" and already.at is not None
    trail = ops.recent_actions("default")
    assert [(entry["action"], entry["by"], entry["what"]) for entry in trail] == [
        ("resume", "bob", "resumed the queue"),
        ("pause", "ada", "paused the queue"),
    ]
    assert [record.getMessage() for record in caplog.records if record.name == "tasks_app.operations"] == [
        "Queue default: ada paused the queue",
        "Queue default: bob resumed the queue",
    ]


def test_async_code_awaits_the_a_operations_and_a_sync_twin_there_names_its_twin(redis_db):
    async def go():
        try:
            with pytest.raises(RuntimeError, match=r"use `await tasks_app\.operations\.apause\(\.\.\.\)`"):
                ops.pause("default", by="ada")
            assert await ops.apause("default", by="ada") is None
            depth = await ops.adepth("default")
            assert await ops.aresume("default", by="ada") is True
            return depth
        finally:
            await disconnect_all()

    depth = asyncio.run(go())
    assert depth.paused["by"] == "ada" and ops.Paused.of(depth.paused).by == "ada"
    assert queue_state._read("default", lambda q: pausing.paused(q)) is None


def test_a_job_that_cannot_be_retried_or_aborted_is_refused_saying_why(redis_db):
    job = enqueue("greet", name="x")
    with pytest.raises(ActionRefused, match=r"Only failed or aborted jobs can be retried; job '.+' is queued\."):
        ops.retry_job("default", job.key, by="ada")
    with pytest.raises(ActionRefused, match=r"Job 'nope' is not in queue 'default'"):
        ops.abort_job("default", "nope", by="ada")
    aborted = ops.abort_job("default", job.key, by="ada")
    assert aborted.status.value == "aborted" and aborted.meta["dashboard"][-1]["by"] == "ada"
    assert ops.retry_job("default", job.key, by="bob").status.value == "queued"


def test_the_live_workers_read_lists_a_running_worker_and_its_tasks(transactional_db, redis_db, worker_in_thread):
    # A worker writes its info at its first worker_info tick (2 s in the tests).
    wait_until(lambda: asyncio.run(_alive_workers()), message="the worker's info")
    ((worker_id, info, expiry),) = asyncio.run(_alive_workers())
    assert worker_id == worker_in_thread.id and "greet" in info["metadata"]["tasks"]
    assert expiry > 0


async def _alive_workers():
    try:
        return await ops.alive_workers("default")
    finally:
        await disconnect_all()


def test_pausequeue_and_resumequeue_commands(redis_db, capsys):
    call_command("pausequeue", "default")
    assert capsys.readouterr().out.startswith("Queue 'default' is paused")
    call_command("pausequeue", "--all")
    assert "was paused already, by " in capsys.readouterr().out
    paused = queue_state._read("default", lambda q: pausing.paused(q))
    assert "(manage.py pausequeue)" in paused["by"]
    call_command("resumequeue", "default")
    assert capsys.readouterr().out == "Queue 'default' is resumed: its workers take jobs again.\n"
    call_command("resumequeue", "default")
    assert capsys.readouterr().out == "Queue 'default' was not paused.\n"
    with pytest.raises(CommandError, match=r"Unknown queue\(s\) 'nope'\. Configured queues: default\."):
        call_command("pausequeue", "nope")
    with pytest.raises(CommandError, match="Name the queue"):
        call_command("pausequeue")


def test_pausequeue_with_redis_down_exits_2_naming_the_setting(closed_port):
    saq = {**settings.SAQ, "QUEUES": {"default": {"URL": f"redis://:pw@127.0.0.1:{closed_port}/0"}}}
    with override_settings(SAQ=saq), pytest.raises(CommandError) as raised:
        call_command("pausequeue", "default")
    assert raised.value.returncode == 2
    assert 'fix SAQ["QUEUES"]["default"]["URL"]' in str(raised.value) and "pw" not in str(raised.value)
